// Grouping results for reports. A results file is input (`check --merge`, `diff`), so its
// size is the attacker's: each group is one array appended to in place. Copying the group on
// every append (`[...(map.get(k) ?? []), x]`) is quadratic: 40,000 results in one group took
// about a minute per report.

/** `items` by `keyOf`, groups and their items in first-seen order. */
export function groupBy<T, K>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
