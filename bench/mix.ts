/**
 * The benchmark's request mix: link numbers drawn from a Zipf-like distribution (P(rank k) ∝ 1/k^s), as short-link
 * traffic is: a few links get most clicks, most links get a few. Seeded, so every run sends the same sequence.
 */

/** mulberry32: a small seeded PRNG, so every run sends the same sequence. */
export function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `samples` link numbers (1..n) drawn with P(rank k) ∝ 1/k^s, plus how concentrated the draw is. */
export function zipfSample(n: number, s: number, samples: number) {
  const random = prng(42);
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = total += 1 / k ** s;
  // Ranks map to link numbers through a fixed shuffle: popular links are scattered over the table, as they
  // are in real life, instead of being the first rows inserted.
  const linkOfRank = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [linkOfRank[i], linkOfRank[j]] = [linkOfRank[j]!, linkOfRank[i]!];
  }
  const draws: number[] = [];
  const hits = new Uint32Array(n);
  for (let i = 0; i < samples; i++) {
    const u = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    hits[lo]!++;
    draws.push(linkOfRank[lo]!);
  }
  const top = (k: number) => hits.slice(0, k).reduce((a, b) => a + b, 0) / samples;
  return { draws, distinct: hits.filter((h) => h > 0).length, top1: top(1), top100: top(100) };
}
