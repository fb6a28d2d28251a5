/**
 * --max_loaded_versions as a pure policy (gateway/manager/eviction.ts) and the version state machine's
 * transition table (gateway/manager/version-state.ts), from tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError, parseFlags } from '../../gateway/flags.js';
import { planEviction, type EvictionCandidate } from '../../gateway/manager/eviction.js';
import { IllegalTransition, servableState, transition, TRANSITIONS, type VersionState } from '../../gateway/manager/version-state.js';

const v = (key: string, state: VersionState, inFlight: number, lastUsed: number): EvictionCandidate => ({ key, state, inFlight, lastUsed });

describe('planEviction', () => {
  const cases: Array<{ name: string; versions: EvictionCandidate[]; limit: number; victims: string[]; blocked: boolean }> = [
    { name: 'no limit never evicts', versions: [v('a:1', 'AVAILABLE', 0, 1), v('b:1', 'AVAILABLE', 0, 2)], limit: 0, victims: [], blocked: false },
    { name: 'room left: nothing to do', versions: [v('a:1', 'AVAILABLE', 0, 1)], limit: 2, victims: [], blocked: false },
    {
      name: 'full: the least recently used idle version goes',
      versions: [v('a:1', 'AVAILABLE', 0, 30), v('b:1', 'AVAILABLE', 0, 10), v('c:1', 'AVAILABLE', 0, 20)],
      limit: 3,
      victims: ['b:1'],
      blocked: false,
    },
    {
      name: 'a version with requests in flight is never picked, however old',
      versions: [v('a:1', 'AVAILABLE', 1, 1), v('b:1', 'AVAILABLE', 0, 50), v('c:1', 'AVAILABLE', 3, 2)],
      limit: 3,
      victims: ['b:1'],
      blocked: false,
    },
    {
      name: 'everything busy: blocked, nobody evicted',
      versions: [v('a:1', 'AVAILABLE', 1, 1), v('b:1', 'AVAILABLE', 2, 2)],
      limit: 2,
      victims: [],
      blocked: true,
    },
    {
      name: 'loading and unloading versions count but are never victims',
      versions: [v('a:1', 'LOADING', 0, 0), v('b:1', 'UNLOADING', 0, 0), v('c:1', 'AVAILABLE', 0, 5)],
      limit: 3,
      victims: ['c:1'],
      blocked: false,
    },
    {
      name: 'an eviction under way still holds its slot: wait rather than evict a second',
      versions: [v('a:1', 'UNLOADING', 0, 0), v('c:1', 'AVAILABLE', 2, 5)],
      limit: 2,
      victims: [],
      blocked: true,
    },
    {
      name: 'idle, never-loaded and failed versions do not count',
      versions: [v('a:1', 'IDLE', 0, 0), v('b:1', 'END', 0, 0), v('c:1', 'START', 0, 0), v('d:1', 'AVAILABLE', 0, 9)],
      limit: 2,
      victims: [],
      blocked: false,
    },
    {
      name: 'over the limit (limit lowered): enough victims to fit, oldest first',
      versions: [v('a:1', 'AVAILABLE', 0, 3), v('b:1', 'AVAILABLE', 0, 1), v('c:1', 'AVAILABLE', 0, 2), v('d:1', 'AVAILABLE', 0, 4)],
      limit: 2,
      victims: ['b:1', 'c:1', 'a:1'],
      blocked: false,
    },
    {
      name: 'ties go to the lower key',
      versions: [v('b:2', 'AVAILABLE', 0, 7), v('b:10', 'AVAILABLE', 0, 7), v('a:1', 'AVAILABLE', 0, 8)],
      limit: 3,
      victims: ['b:10'],
      blocked: false,
    },
    {
      name: 'partly blocked: evict what may go, and wait for the rest',
      versions: [v('a:1', 'AVAILABLE', 0, 3), v('b:1', 'AVAILABLE', 1, 1), v('c:1', 'AVAILABLE', 1, 2)],
      limit: 1,
      victims: ['a:1'],
      blocked: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(planEviction(c.versions, c.limit), { victims: c.victims, blocked: c.blocked });
    });
  }
});

describe('version state machine', () => {
  const allowed: Array<[VersionState, VersionState]> = [
    ['START', 'LOADING'], ['START', 'END'], ['IDLE', 'LOADING'], ['IDLE', 'END'], ['LOADING', 'AVAILABLE'],
    ['LOADING', 'END'], ['AVAILABLE', 'UNLOADING'], ['AVAILABLE', 'END'], ['UNLOADING', 'END'], ['UNLOADING', 'IDLE'],
  ];
  it('the table holds exactly the allowed transitions', () => {
    const table = Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => [from, to]));
    assert.deepEqual(table.sort(), allowed.map((p) => [...p]).sort());
  });
  it('refuses anything else', () => {
    const states = Object.keys(TRANSITIONS) as VersionState[];
    for (const from of states) {
      for (const to of states) {
        if (from === to) continue;
        const holder = { state: from };
        if (allowed.some(([a, b]) => a === from && b === to)) {
          transition(holder, to);
          assert.equal(holder.state, to);
        } else {
          assert.throws(() => transition(holder, to), IllegalTransition, `${from} → ${to}`);
          assert.equal(holder.state, from);
        }
      }
    }
  });
  it('status shows IDLE as TF Serving\'s START', () => {
    assert.equal(servableState('IDLE'), 'START');
    assert.equal(servableState('AVAILABLE'), 'AVAILABLE');
  });
});

describe('flags', () => {
  it('default: eager loading, no limit, standby workers only matter with --load_on_demand', () => {
    const f = parseFlags([], {});
    assert.deepEqual([f.load_on_demand, f.max_loaded_versions, f.standby_workers], [false, 0, 2]);
  });
  it('--max_loaded_versions needs --load_on_demand and is not negative', () => {
    assert.throws(() => parseFlags(['--max_loaded_versions=3'], {}), FlagError);
    assert.throws(() => parseFlags(['--load_on_demand', '--max_loaded_versions=-1'], {}), FlagError);
    const f = parseFlags(['--load_on_demand', '--max_loaded_versions=20'], {});
    assert.deepEqual([f.load_on_demand, f.max_loaded_versions], [true, 20]);
  });
});
