/**
 * Summarises V8 CPU profiles (`node --cpu-prof` writes `*.cpuprofile`): the top entries by self time,
 * as a share of all samples. Used by bench/serving.ts for the profile section of RESULTS.md, and by
 * hand:
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [--top=20] [--busy]
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
}

export interface SelfTimeEntry {
  name: string;
  share: number;
}

/**
 * Self-time shares by function (name + file + line), largest first; GC and native entries keep V8's
 * names. With `busyOnly`, `(idle)` samples are left out and shares are of the busy samples.
 */
export async function summarizeProfile(file: string, top = 20, busyOnly = false): Promise<{ samples: number; entries: SelfTimeEntry[] }> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const hits = new Map<number, number>();
  if (profile.samples) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  const byName = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const h = hits.get(n.id) ?? 0;
    const f = n.callFrame;
    if (h === 0 || (busyOnly && f.functionName === '(idle)')) continue;
    total += h;
    const where = f.url ? ` ${f.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')}:${f.lineNumber + 1}` : '';
    const name = `${f.functionName || '(anonymous)'}${where}`;
    byName.set(name, (byName.get(name) ?? 0) + h);
  }
  const entries = [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, h]) => ({ name, share: h / Math.max(1, total) }));
  return { samples: total, entries };
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: profile-summary.js <file.cpuprofile> [--top=N]');
    process.exit(2);
  }
  const top = Number(process.argv.find((a) => a.startsWith('--top='))?.split('=')[1] ?? 25);
  const { samples, entries } = await summarizeProfile(file, top, process.argv.includes('--busy'));
  console.log(`${samples} samples`);
  for (const e of entries) console.log(`${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
}
