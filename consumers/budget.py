"""What one worker holds of one shared limit: a lease of tenant slots and a few rate tokens.

A ``Budget`` is the local side of one tenant, one sender or the global rate. The
admission round (``lease_round.lua``) fills it; lanes then take from it without a round
trip. It stays safe while Redis is away because everything in it lapses: slots when the
lease can no longer cover a whole send (``lease_until``), tokens after ``TOKEN_LIFETIME``,
limits and pauses after ``FRESH_FOR`` (a round re-reads them).
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ("FRESH_FOR", "TOKEN_LIFETIME", "Budget")

TOKEN_LIFETIME = 0.1
"""Seconds a granted rate token may wait for a send, at least: the round sets each
rate's to burst/rate clamped to [TOKEN_LIFETIME, 1 s] (the floor is in
``lease_round.lua``). A token used late runs its send later than the rate granted it, so
this bounds the overshoot: in any window of t seconds at most rate x t + burst +
max(burst, rate x TOKEN_LIFETIME) sends (plus what one round trip's delay can shift).

Why not shorter: the floor must outlast a round trip under load with room to spare, or
tokens lapse while their top-up is on its way and sends stall for the next round. A
worker busy with sends reads a round's reply one or two event-loop turns late: 33 ms
median, up to 130 ms, measured in a worker delivering ~50,000 msgs/s on 2 cores. At 50 ms
tokens lapsed in flight (up to 5,000 sends per 200,000 waited for the next round) and
flow control with limits never reached cost a median 21% of throughput (9% at 100 ms)."""

_PREFETCH_MAX = 100_000
_EXTRA_FACTOR = 4
_EXTRA_MIN = 32
_PEAK_HALF_LIFE = 0.25
_QUIET_AFTER = 0.5
"""Seconds without a send after which a tenant wants no slots kept for it."""
_RATE_HALF_LIFE = 0.1

FRESH_FOR = 1.0
"""Seconds limits, pauses and the cap-off/rate-off state read by a round stay trusted."""

UNLIMITED = 1 << 60
"""Slots or tokens of a budget without that limit (counting down from here never ends)."""


@dataclasses.dataclass(slots=True, eq=False)
class Budget:
    """One limit's local state; all times are ``time.monotonic()`` seconds."""

    known_until: float = 0.0
    """Until when the last round's answer holds (0: never asked)."""
    capped: bool = False
    """Tenants: whether a cap applies."""
    slots: int = 0
    """Sends of this tenant this worker may have in flight (0 when not capped)."""
    lease_until: float = math.inf
    """When the slot lease may lapse in Redis: round sent-time + slot TTL."""
    in_use: int = 0
    free: int = 0
    """Slots left to take: ``slots - in_use`` (``UNLIMITED`` without a cap)."""
    open_until: float = 0.0
    """Until when a send may take from this budget with no other check of time: the
    earliest of ``known_until``, ``tokens_until`` and the lease less one send timeout."""
    peak: int = 0
    """Most in flight lately (sizes the next lease): halved every ``_PEAK_HALF_LIFE`` s, so
    a lease shrinks gradually once the tenant goes quiet, not between two bursts."""
    peak_halves_at: float = 0.0
    limited: bool = True
    """Whether a rate applies (unknown until the first round: assume so)."""
    tokens: int = 0
    """Tokens left (``UNLIMITED`` without a rate)."""
    tokens_until: float = 0.0
    token_life: float = TOKEN_LIFETIME
    refill_below: int = 0
    """Ask for more (with the next round) once fewer tokens than this are left..."""
    refill_at: float = 0.0
    """...or from this time on, before the tokens lapse."""
    granted: int = 0
    """Tokens the last grant gave (``granted - tokens`` have been taken since)."""
    granted_at: float = 0.0
    use_rate: float = 0.0
    """Tokens used per second lately (sizes the prefetch): the last grant's use, or a
    decaying memory of faster use (half-life ``_RATE_HALF_LIFE``)."""
    paused_until: float = 0.0
    """The provider asked to wait (a 429 here, or the pause key another worker set)."""
    rate_open_at: float = 0.0
    """When the rate has its next token, after a round found none."""
    asking: int = 0
    """Sends waiting for the next round."""
    starved: bool = False
    """A send was refused for the cap since the last round."""
    recorded: int = 0
    """Slots the lease in Redis says this worker holds (can exceed ``slots`` until the
    next round, which records what is in flight then)."""
    wanting: bool = False
    """The last round recorded slots this worker wants and did not get (other workers
    shrink to a fair share meanwhile): rounds must go on until that record is cleared."""
    taken_at: float = -math.inf
    """When a send last took from this budget (a tenant sending now and then keeps a small
    lease; one quiet for a whole token life stops prefetching)."""
    touched: bool = False
    """Something was taken since the last round covered this budget."""
    keys: tuple[bytes, ...] = ()
    """Its Redis keys, encoded once (see ``lease_round``)."""

    def slot_free(self, now: float, send_timeout: float) -> bool:
        return self.free > 0 and now + send_timeout < self.lease_until

    def token_free(self, now: float) -> bool:
        return self.tokens > 0 and now < self.tokens_until

    def take(self, now: float) -> None:
        """One send of this tenant starts: a slot and a token."""
        self.in_use += 1
        self.free -= 1
        self.peak = max(self.peak, self.in_use)
        self.take_token(now)

    def take_token(self, now: float) -> None:
        self.touched = True
        self.taken_at = now
        self.tokens -= 1

    @property
    def used(self) -> int:
        """Tokens taken since the last grant."""
        return self.granted - self.tokens if self.limited else 0

    def owes(self) -> bool:
        """The lease in Redis holds slots this worker may no longer use and no longer has
        in flight: a round would give them back to the workers waiting for them."""
        return self.recorded > max(self.slots, self.in_use)

    def set_slots(self, allowed: int, lease_until: float) -> None:
        """A round's lease: ``allowed`` slots (-1: no cap) until ``lease_until``."""
        self.capped = allowed >= 0
        if self.capped:
            self.slots, self.free, self.lease_until = allowed, allowed - self.in_use, lease_until
        else:
            self.slots, self.free, self.lease_until = 0, UNLIMITED, math.inf

    def set_unlimited_tokens(self) -> None:
        self.limited = False
        self.tokens, self.tokens_until = UNLIMITED, math.inf
        self.refill_below, self.refill_at = -1, math.inf

    def reopen(self, send_timeout: float) -> None:
        """Recompute ``open_until`` after a round changed the times it depends on."""
        self.open_until = min(self.known_until, self.tokens_until, self.lease_until - send_timeout)

    def slot_want(self, now: float) -> tuple[int, int]:
        """(hold, want) for the lease: ``hold`` covers what may be in flight when the reply
        arrives; ``want`` is twice what is in flight or waiting (or the recent peak) plus
        two, so a steady flow does not need a round per send, and 0 once all is quiet (nothing
        in flight, waiting or sent for ``_QUIET_AFTER`` s)."""
        hold = max(self.in_use, self.slots if self.capped else 0)
        need = self.in_use + self.asking + (1 if self.starved else 0)
        recent = 1 if now - self.taken_at < _QUIET_AFTER else 0
        busy = max(need, self.peak, recent)
        return hold, 2 * busy + 2 if busy else 0

    def running_low(self, now: float) -> bool:
        """True when tokens in use will run out or lapse soon: top up before they do
        (also between a busy budget's bursts: its last grants were used)."""
        if not self.limited or not (self.used or self.use_rate * self.token_life >= 1):
            return False
        return self.tokens < self.refill_below or now >= self.refill_at

    def decay_peak(self, now: float) -> None:
        if now >= self.peak_halves_at:
            self.peak = max(self.in_use, self.peak // 2)
            self.peak_halves_at = now + _PEAK_HALF_LIFE

    def prefetch(self, now: float) -> int:
        """Tokens to ask for beyond the waiting sends: what the recent use would take
        within one token lifetime. None once the sends stopped (nothing taken for a whole
        token life, nothing waiting): the recent rate decays only slowly, and asking for it
        round after round would charge Redis for tokens nobody uses."""
        if not self.asking and now - self.taken_at >= self.token_life:
            return 0
        return min(math.ceil(self.use_rate * self.token_life), _PREFETCH_MAX)

    @staticmethod
    def extra(wanted: int) -> int:
        """Tokens to ask for beyond ``wanted``: granted only from a bucket more than half
        full (spare capacity), they carry a busy worker over a loop that is slow to run the
        next round (one event-loop turn can take tens of ms under load)."""
        return min(_EXTRA_FACTOR * wanted + _EXTRA_MIN, _PREFETCH_MAX) if wanted > 0 else 0

    def grant(self, tokens: int, life: float, now: float, lead: float) -> None:
        """A round granted ``tokens``: they replace what is left, which lapses (it was
        spent in Redis when granted; carried on, a send could run later than its grant).
        The top-up is due at half their life, or ``lead`` seconds before they lapse if
        that is earlier (a loop busy with sends is slow to finish a round)."""
        if self.granted_at:
            elapsed = max(now - self.granted_at, 0.001)
            decayed = self.use_rate * 0.5 ** (elapsed / _RATE_HALF_LIFE)
            self.use_rate = max(self.used / elapsed, decayed)
            if self.tokens <= 0:  # ran out: the demand was more than was used; ramp up
                self.use_rate = max(self.use_rate * 2, self.used / self.token_life)
            self.use_rate = min(self.use_rate, _PREFETCH_MAX / life)
        self.limited = True
        self.tokens = tokens
        self.token_life = life
        self.tokens_until = now + life
        self.refill_below = (tokens + 1) // 2
        self.refill_at = now + max(0.0, life - max(life * 0.5, lead))
        self.granted_at = now
        self.granted = tokens

    def idle(self) -> bool:
        return not (self.in_use or self.asking or self.recorded or self.slots)

    def in_play(self) -> bool:
        """Whether a periodic round should cover it (renew, re-read limits and pauses)."""
        return self.touched or self.wanting or not self.idle()

    def forgettable(self, now: float) -> bool:
        """Nothing held, nothing waiting, nothing to remember: the next send asks afresh."""
        return (
            self.idle()
            and not self.touched
            and not self.wanting
            and self.paused_until <= now
            and self.rate_open_at <= now
        )
