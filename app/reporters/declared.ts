// What every report says about the loader's own declaration: its name, version, mode,
// capabilities and forms, and the cases skipped because they need something it does not
// declare, grouped by reason and counted (a skip is never a pass).
import { describeCapabilities, type DeclaredLoader } from '../../harness/conformance/capabilities.js';
import { undeclaredOf, type CaseResult } from '../../harness/conformance/results.js';
import type { RunInfo } from '../../harness/conformance/run-info.js';
import { groupBy } from './group.js';


export interface UndeclaredGroup {
  reason: string;
  ids: string[];
}

/** Cases skipped as not declared, by reason, largest group first. */
export function undeclaredGroups(results: readonly CaseResult[]): UndeclaredGroup[] {
  const skipped = results.flatMap((r) => {
    const reason = undeclaredOf(r);
    return reason === undefined ? [] : [{ reason, id: r.id }];
  });
  return groupBy(skipped, (s) => s.reason).map(([reason, s]) => ({ reason, ids: s.map((x) => x.id) })).sort((a, b) => b.ids.length - a.ids.length || (a.reason < b.reason ? -1 : 1));
}

export function countUndeclared(results: readonly CaseResult[]): number {
  return results.filter((r) => undeclaredOf(r) !== undefined).length;
}

/** `fake 0.0.1 (worker)`. */
export function loaderLine(l: DeclaredLoader): string {
  return `${l.name}${l.version ? ` ${l.version}` : ''} (${l.mode})`;
}

/** Key/value facts of the loader, for JUnit properties and the HTML table. */
export function loaderFacts(l: DeclaredLoader): Array<[string, string]> {
  return [
    ['loader.name', l.name],
    ['loader.version', l.version ?? '(not declared)'],
    ['loader.mode', l.mode],
    ['loader.capabilities', describeCapabilities(l.capabilities)],
    ['loader.forms', l.capabilities?.forms?.join(', ') || 'canonical only'],
  ];
}

/** IDs listed per reason in the terminal; the JSON, JUnit and HTML reports list them all. */
const TERMINAL_IDS_PER_REASON = 20;

/** The terminal report's lines about the loader and the undeclared skips (empty when there is nothing to say). */
export function declaredTerminal(results: readonly CaseResult[], run?: RunInfo): string[] {
  const out: string[] = [];
  const d = run?.declared;
  if (d) {
    out.push(`declared: ${loaderLine(d)}`);
    out.push(`  capabilities: ${describeCapabilities(d.capabilities)}`);
    out.push(`  forms: ${d.capabilities?.forms?.join(', ') || 'canonical only'}`);
  }
  const groups = undeclaredGroups(results);
  if (groups.length) {
    if (out.length) out.push('');
    out.push(`skip (not declared): ${countUndeclared(results)} cases`);
    for (const g of groups) {
      out.push(`  ${g.ids.length} × ${g.reason}`);
      for (const id of g.ids.slice(0, TERMINAL_IDS_PER_REASON)) out.push(`    ${id}`);
      if (g.ids.length > TERMINAL_IDS_PER_REASON) out.push(`    ... and ${g.ids.length - TERMINAL_IDS_PER_REASON} more (every one in the JSON, JUnit and HTML reports)`);
    }
  }
  return out;
}
