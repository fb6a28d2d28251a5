/**
 * The life of one model version in this gateway, as a state machine whose allowed transitions are
 * all in one table (TRANSITIONS). States are TF Serving's (START, LOADING, AVAILABLE, UNLOADING, END)
 * plus IDLE, used only with --load_on_demand: the version is configured and on disk, and loads on its
 * first request (never loaded yet, or evicted by --max_loaded_versions). Status reports IDLE with TF's
 * START, the state of a servable the manager knows and has not loaded (README: "Loading on demand").
 *
 *   START ──► LOADING ──► AVAILABLE ──► UNLOADING ──► END
 *     │          │                          │
 *     └──► END ◄─┘ (failed or cancelled)    └──► IDLE (evicted: loads again on its next request)
 *   IDLE ──► LOADING (first request)   IDLE ──► END (no longer configured)
 */
export type ServableState = 'START' | 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';
export type VersionState = ServableState | 'IDLE';

export const TRANSITIONS: Readonly<Record<VersionState, readonly VersionState[]>> = {
  START: ['LOADING', 'END'],
  IDLE: ['LOADING', 'END'],
  LOADING: ['AVAILABLE', 'END'],
  AVAILABLE: ['UNLOADING', 'END'],
  UNLOADING: ['END', 'IDLE'],
  END: [],
};

export class IllegalTransition extends Error {}

/** Moves `holder` to `to`, or throws when the table does not allow it (a bug, never a request error). */
export function transition(holder: { state: VersionState }, to: VersionState, what = 'version'): void {
  if (holder.state === to) return;
  if (!TRANSITIONS[holder.state].includes(to)) {
    throw new IllegalTransition(`${what}: ${holder.state} → ${to} is not an allowed transition`);
  }
  holder.state = to;
}

/** The TF Serving state status reports. */
export function servableState(state: VersionState): ServableState {
  return state === 'IDLE' ? 'START' : state;
}

/** States that hold (or are about to hold) worker processes: what --max_loaded_versions counts. */
export function holdsWorkers(state: VersionState): boolean {
  return state === 'LOADING' || state === 'AVAILABLE' || state === 'UNLOADING';
}
