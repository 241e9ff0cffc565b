// An ETA that counts down steadily. The rate is smoothed (an exponentially weighted mean), a new
// estimate may bring the shown ETA down at once, but may raise it only slowly — by at most `maxRise`
// of itself (and at least one second) per second — so a stall or a burst never makes it jump back.

export class EtaSmoother {
  constructor({ alpha = 0.3, maxRise = 0.1 } = {}) {
    this.alpha = alpha;
    this.maxRise = maxRise;
    this.rate = null;
    this.eta = null;
    this.at = null;
  }

  /** remaining bytes, the latest measured rate (bytes/s), now (seconds) -> the ETA to show, or null. */
  update(remaining, rateBps, now) {
    if (remaining <= 0) {
      this.eta = 0;
      this.at = now;
      return 0;
    }
    if (Number.isFinite(rateBps) && rateBps > 0) {
      this.rate = this.rate === null ? rateBps : this.rate + this.alpha * (rateBps - this.rate);
    }
    if (!(this.rate > 0)) return this.eta;
    const raw = remaining / this.rate;
    if (this.eta === null) {
      this.eta = raw;
      this.at = now;
      return raw;
    }
    const dt = Math.max(0, now - this.at);
    const expected = Math.max(0, this.eta - dt);
    let next = expected + this.alpha * (raw - expected);
    if (raw < expected) next = Math.min(next, raw * 1.5 + 1);
    const ceiling = expected + Math.max(1, this.maxRise * expected) * dt;
    this.eta = Math.max(0, Math.min(next, ceiling));
    this.at = now;
    return this.eta;
  }
}
