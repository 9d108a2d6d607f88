// @ts-check
/**
 * Reading Prometheus' text format and estimating quantiles from histogram buckets, the way
 * PromQL's `histogram_quantile` does (linear interpolation inside the bucket).
 * @module metrics
 */

/**
 * @typedef {object} Sample
 * @property {Record<string, string>} labels
 * @property {number} value
 */

/**
 * Parses the text format into samples by metric name (comments and malformed lines skipped).
 * @param {string} text
 * @returns {Map<string, Sample[]>}
 */
export function parsePrometheus(text) {
  /** @type {Map<string, Sample[]>} */
  const metrics = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    if (match[2]) {
      for (const pair of match[2].slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const value = match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3]);
    if (Number.isNaN(value) && match[3] !== 'NaN') continue;
    const list = metrics.get(match[1]) ?? [];
    list.push({ labels, value });
    metrics.set(match[1], list);
  }
  return metrics;
}

/**
 * The sum of a metric over all its label sets (null when it is absent).
 * @param {Map<string, Sample[]>} metrics
 * @param {string} name
 */
export function total(metrics, name) {
  const samples = metrics.get(name);
  if (!samples) return null;
  return samples.reduce((sum, sample) => sum + sample.value, 0);
}

/**
 * @typedef {object} Bucket
 * @property {number} le upper bound (Infinity for the last)
 * @property {number} count cumulative count
 */

/**
 * The cumulative buckets of histogram `name`, summed over other labels, by increasing bound.
 * @param {Map<string, Sample[]>} metrics
 * @param {string} name the histogram's name without `_bucket`
 * @returns {Bucket[]}
 */
export function buckets(metrics, name) {
  /** @type {Map<number, number>} */
  const byBound = new Map();
  for (const sample of metrics.get(`${name}_bucket`) ?? []) {
    const text = sample.labels.le;
    if (text === undefined) continue;
    const le = text === '+Inf' ? Infinity : Number(text);
    if (Number.isNaN(le)) continue;
    byBound.set(le, (byBound.get(le) ?? 0) + sample.value);
  }
  return [...byBound.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/**
 * Bucket counts of `now` minus those of `before` (the observations in between).
 * @param {Bucket[]} now
 * @param {Bucket[]} before
 * @returns {Bucket[]}
 */
export function bucketDelta(now, before) {
  const old = new Map(before.map((bucket) => [bucket.le, bucket.count]));
  return now.map((bucket) => ({ le: bucket.le, count: Math.max(0, bucket.count - (old.get(bucket.le) ?? 0)) }));
}

/**
 * @typedef {object} Quantile
 * @property {number} value seconds
 * @property {boolean} aboveLargestBucket the quantile lies beyond the last finite bound (value is that bound)
 * @property {number} count observations it is computed from
 */

/**
 * The q-quantile (0..1) estimated from cumulative buckets; null without observations.
 * @param {number} q
 * @param {Bucket[]} list
 * @returns {Quantile | null}
 */
export function quantile(q, list) {
  if (list.length === 0) return null;
  const count = list[list.length - 1].count;
  if (!(count > 0)) return null;
  const rank = q * count;
  for (let index = 0; index < list.length; index += 1) {
    const bucket = list[index];
    if (bucket.count < rank) continue;
    const lowerBound = index === 0 ? 0 : list[index - 1].le;
    const lowerCount = index === 0 ? 0 : list[index - 1].count;
    if (bucket.le === Infinity) {
      return { value: lowerBound, aboveLargestBucket: true, count };
    }
    const inBucket = bucket.count - lowerCount;
    const value = inBucket > 0 ? lowerBound + (bucket.le - lowerBound) * ((rank - lowerCount) / inBucket) : bucket.le;
    return { value, aboveLargestBucket: false, count };
  }
  return null;
}
