/**
 * Graph plumbing: constants, placeholders, identities, function calls and functional control flow,
 * variables (TF1 references and TF2 resources), checkpoint restore, and the few string ops the
 * restore/save subgraphs use.
 */
import { Code, ServingError } from '../../../../common/errors.js';
import type { ResourceHandle, TfTensor } from '../tf-tensor.js';
import {
  Attrs,
  B,
  I,
  S,
  VarRef,
  elementCount,
  invalidArg,
  readValue,
  register,
  scalarOf,
  stringsOf,
  unimplementedErr,
  type KernelContext,
  type Value,
  type Variable,
} from './registry.js';
import { add, sub } from './math.js';
import { gather } from './array.js';
import { sameShape, shapeStr } from './util.js';

const constCache = new WeakMap<Attrs, TfTensor>();
const enc = new TextEncoder();

function constValue(attrs: Attrs): TfTensor {
  let t = constCache.get(attrs);
  if (!t) {
    t = attrs.tensor('value');
    constCache.set(attrs, t);
  }
  return t;
}

function shapeCompatible(shape: number[] | null, actual: number[]): boolean {
  if (shape === null) return true;
  if (shape.length !== actual.length) return false;
  return shape.every((d, i) => d < 0 || d === actual[i]);
}

function fmtShape(shape: number[] | null): string {
  return shape === null ? '<unknown>' : `[${shape.map((d) => (d < 0 ? '?' : d)).join(',')}]`;
}

// ------------------------------------------------------------------------------------------------
// Variables

function refVar(ctx: KernelContext): Variable {
  const container = ctx.attrs.str('container', '');
  const shared = ctx.attrs.str('shared_name', '');
  return ctx.session.refVariable(`${container}/${shared || ctx.nodeName}`);
}

function refInput(ctx: KernelContext, i: number): Variable {
  const v = ctx.inputs[i];
  if (!(v instanceof VarRef)) throw invalidArg(`${ctx.op} needs a variable reference as input ${i}`);
  return v.variable;
}

function handleOf(t: TfTensor, op: string): ResourceHandle {
  if (t.dtype !== 'DT_RESOURCE' || elementCount(t.shape) !== 1) throw invalidArg(`${op} needs a scalar resource handle`);
  return (t.data as ResourceHandle[])[0]!;
}

function resourceVar(ctx: KernelContext, create: boolean): Variable {
  const h = handleOf(ctx.input(0), ctx.op);
  const v = ctx.session.resourceVariable(h.container, h.name, create);
  if (!v || (!create && !v.value)) {
    throw new ServingError(
      Code.FAILED_PRECONDITION,
      `Could not find variable ${h.name}. This could mean that the variable has been deleted or was never initialized (container: ${h.container || 'localhost'})`,
    );
  }
  return v;
}

function readResource(ctx: KernelContext): TfTensor {
  const v = resourceVar(ctx, false);
  const t = v.value!;
  const want = ctx.attrs.has('dtype') ? ctx.attrs.type('dtype') : t.dtype;
  if (t.dtype !== want) throw invalidArg(`Trying to read variable ${v.name} with wrong dtype. Expected ${want} got ${t.dtype}`);
  return t;
}

function updateVariable(v: Variable, value: TfTensor, op: 'add' | 'sub', opName: string): TfTensor {
  const old = v.value;
  if (!old) throw new ServingError(Code.FAILED_PRECONDITION, `Attempting to use uninitialized value ${v.name}`);
  if (old.dtype !== value.dtype) throw invalidArg(`${opName}: variable ${v.name} has type ${old.dtype} but the value is ${value.dtype}`);
  if (!sameShape(old.shape, value.shape)) {
    throw invalidArg(`${opName}: shapes of variable ${v.name} ${shapeStr(old.shape)} and value ${shapeStr(value.shape)} must match`);
  }
  v.value = op === 'add' ? add(old, value) : sub(old, value);
  return v.value;
}

// ------------------------------------------------------------------------------------------------
// Calls

function call(ctx: KernelContext, attr = 'f', args: Value[] = ctx.inputs): Value[] {
  const f = ctx.attrs.func(attr);
  return ctx.session.callFunction(f.name, f.attr, args);
}

function truthy(t: TfTensor): boolean {
  if (elementCount(t.shape) !== 1) {
    // TF: a non-scalar predicate is true when it has any elements.
    return elementCount(t.shape) > 0;
  }
  if (t.dtype === 'DT_STRING') return (t.data as Uint8Array[])[0]!.length > 0;
  return Boolean(scalarOf(t));
}

// ------------------------------------------------------------------------------------------------

register({
  Const: (ctx) => [constValue(ctx.attrs)],
  HostConst: (ctx) => [constValue(ctx.attrs)],
  Placeholder: (ctx) => {
    const dtype = ctx.attrs.values.dtype ? ctx.attrs.type('dtype') : 'unknown';
    const shape = ctx.attrs.has('shape') ? ctx.attrs.shape('shape') : null;
    throw invalidArg(`You must feed a value for placeholder tensor '${ctx.nodeName}' with dtype ${dtype} and shape ${fmtShape(shape)}`);
  },
  PlaceholderV2: (ctx) => {
    throw invalidArg(`You must feed a value for placeholder tensor '${ctx.nodeName}'`);
  },
  PlaceholderWithDefault: (ctx) => [ctx.input(0)],
  Identity: (ctx) => [ctx.input(0)],
  IdentityN: (ctx) => ctx.inputs.map((_, i) => ctx.input(i)),
  Snapshot: (ctx) => [ctx.input(0)],
  StopGradient: (ctx) => [ctx.input(0)],
  PreventGradient: (ctx) => [ctx.input(0)],
  NoOp: () => [],
  EnsureShape: (ctx) => {
    const t = ctx.input(0);
    const want = ctx.attrs.shape('shape');
    if (!shapeCompatible(want, t.shape)) {
      throw invalidArg(`Shape of tensor ${ctx.nodeName} ${shapeStr(t.shape)} is not compatible with expected shape ${fmtShape(want)}.`);
    }
    return [t];
  },
  CheckNumerics: {
    defaults: { message: S('') },
    kernel: (ctx) => {
      const t = ctx.input(0);
      const d = t.data as Float32Array;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!)) {
          throw invalidArg(`${ctx.attrs.str('message')} : Tensor had ${Number.isNaN(d[i]!) ? 'NaN' : 'Inf'} values`);
        }
      }
      return [t];
    },
  },
  Assert: {
    defaults: { summarize: I(3) },
    kernel: (ctx) => {
      const cond = ctx.input(0);
      if (!truthy(cond)) {
        const parts = ctx.inputs.slice(1).map((_, i) => {
          const t = ctx.input(i + 1);
          if (t.dtype === 'DT_STRING') return stringsOf(t).join(' ');
          return `${Array.from(t.data as ArrayLike<number>).slice(0, ctx.attrs.int('summarize'))}`;
        });
        throw invalidArg(`assertion failed: ${parts.join(' ')}`);
      }
      return [];
    },
  },

  // Function calls and functional control flow.
  StatefulPartitionedCall: { functionAttrs: ['f'], defaults: { config: S(''), config_proto: S(''), executor_type: S('') }, kernel: (ctx) => call(ctx) },
  PartitionedCall: { functionAttrs: ['f'], defaults: { config: S(''), config_proto: S(''), executor_type: S('') }, kernel: (ctx) => call(ctx) },
  If: { functionAttrs: ['then_branch', 'else_branch'], kernel: (ctx) => call(ctx, truthy(ctx.input(0)) ? 'then_branch' : 'else_branch', ctx.inputs.slice(1)) },
  StatelessIf: { functionAttrs: ['then_branch', 'else_branch'], kernel: (ctx) => call(ctx, truthy(ctx.input(0)) ? 'then_branch' : 'else_branch', ctx.inputs.slice(1)) },
  Case: {
    functionListAttrs: ['branches'],
    kernel: (ctx) => {
      const branches = ctx.attrs.values.branches?.list?.func ?? [];
      let i = Number(scalarOf(ctx.input(0)));
      if (i < 0 || i >= branches.length) i = branches.length - 1;
      const f = branches[i]!;
      return ctx.session.callFunction(f.name ?? '', f.attr ?? {}, ctx.inputs.slice(1));
    },
  },
  While: { functionAttrs: ['cond', 'body'], defaults: { parallel_iterations: I(10) }, kernel: (ctx) => whileLoop(ctx) },
  StatelessWhile: { functionAttrs: ['cond', 'body'], defaults: { parallel_iterations: I(10) }, kernel: (ctx) => whileLoop(ctx) },

  // TF1 reference variables.
  VariableV2: { defaults: { container: S(''), shared_name: S('') }, kernel: (ctx) => [new VarRef(refVar(ctx))] },
  Variable: { defaults: { container: S(''), shared_name: S('') }, kernel: (ctx) => [new VarRef(refVar(ctx))] },
  Assign: {
    refInputs: [0],
    defaults: { validate_shape: B(true), use_locking: B(true) },
    kernel: (ctx) => {
      const v = refInput(ctx, 0);
      const value = ctx.input(1);
      if (ctx.attrs.bool('validate_shape') && v.value && !sameShape(v.value.shape, value.shape)) {
        throw invalidArg(`Assign requires shapes of both tensors to match. lhs shape= ${shapeStr(v.value.shape)} rhs shape= ${shapeStr(value.shape)}`);
      }
      v.value = value;
      return [ctx.inputs[0]!];
    },
  },
  AssignAdd: { refInputs: [0], defaults: { use_locking: B(false) }, kernel: (ctx) => (updateVariable(refInput(ctx, 0), ctx.input(1), 'add', ctx.op), [ctx.inputs[0]!]) },
  AssignSub: { refInputs: [0], defaults: { use_locking: B(false) }, kernel: (ctx) => (updateVariable(refInput(ctx, 0), ctx.input(1), 'sub', ctx.op), [ctx.inputs[0]!]) },
  IsVariableInitialized: { refInputs: [0], kernel: (ctx) => [{ dtype: 'DT_BOOL', shape: [], data: Uint8Array.of(refInput(ctx, 0).value ? 1 : 0) }] },

  // TF2 resource variables.
  VarHandleOp: {
    defaults: { container: S(''), shared_name: S(''), debug_name: S(''), allowed_devices: { list: {} } },
    kernel: (ctx) => {
      const container = ctx.attrs.str('container', '');
      const name = ctx.attrs.str('shared_name', '') || ctx.nodeName;
      return [{ dtype: 'DT_RESOURCE', shape: [], data: [{ container, name }] }];
    },
  },
  ReadVariableOp: (ctx) => [readResource(ctx)],
  AssignVariableOp: {
    defaults: { validate_shape: B(false) },
    kernel: (ctx) => {
      const v = resourceVar(ctx, true);
      const value = ctx.input(1);
      if (ctx.attrs.has('dtype') && ctx.attrs.type('dtype') !== value.dtype) {
        throw invalidArg(`AssignVariableOp: value of type ${value.dtype} does not match the variable's type ${ctx.attrs.type('dtype')}`);
      }
      if (v.value && v.value.dtype !== value.dtype) {
        throw invalidArg(`Trying to assign variable with wrong dtype. Expected ${v.value.dtype} got ${value.dtype}`);
      }
      if (ctx.attrs.bool('validate_shape') && v.value && !sameShape(v.value.shape, value.shape)) {
        throw invalidArg(`Trying to assign to variable with tensor with wrong shape. Expected ${shapeStr(v.value.shape)} got ${shapeStr(value.shape)}`);
      }
      v.value = value;
      return [];
    },
  },
  AssignAddVariableOp: (ctx) => (updateVariable(resourceVar(ctx, false), ctx.input(1), 'add', ctx.op), []),
  AssignSubVariableOp: (ctx) => (updateVariable(resourceVar(ctx, false), ctx.input(1), 'sub', ctx.op), []),
  VarIsInitializedOp: (ctx) => {
    const h = handleOf(ctx.input(0), ctx.op);
    const v = ctx.session.resourceVariable(h.container, h.name, false);
    return [{ dtype: 'DT_BOOL', shape: [], data: Uint8Array.of(v?.value ? 1 : 0) }];
  },
  DestroyResourceOp: { defaults: { ignore_lookup_error: B(true) }, kernel: (ctx) => {
    const h = handleOf(ctx.input(0), ctx.op);
    ctx.session.deleteResource(h.container, h.name);
    return [];
  } },
  DisableCopyOnRead: () => [],
  ResourceGather: {
    defaults: { batch_dims: I(0), validate_indices: B(true) },
    kernel: (ctx) => [gather(readResource(ctx), ctx.input(1), 0, ctx.attrs.int('batch_dims'))],
  },

  // Checkpoint restore.
  RestoreV2: (ctx) => {
    const prefix = stringsOf(ctx.input(0))[0] ?? '';
    const names = stringsOf(ctx.input(1));
    const slices = stringsOf(ctx.input(2));
    const dtypes = ctx.attrs.types('dtypes');
    if (names.length !== dtypes.length) throw invalidArg(`RestoreV2 has ${names.length} tensor names but ${dtypes.length} dtypes`);
    const bundle = ctx.session.checkpoint(prefix);
    return names.map((name, i) => {
      if (slices[i]) throw unimplementedErr(`RestoreV2: restoring slice '${slices[i]}' of '${name}' is not supported`);
      if (!bundle.has(name)) throw new ServingError(Code.NOT_FOUND, `Key ${name} not found in checkpoint ${prefix}`);
      const t = bundle.read(name);
      if (t.dtype !== dtypes[i]) {
        throw invalidArg(`tensor_name = ${name}; expected dtype ${dtypes[i]} does not equal original dtype ${t.dtype}`);
      }
      return t;
    });
  },

  // Strings used by checkpoint subgraphs.
  StringJoin: {
    defaults: { separator: S('') },
    kernel: (ctx) => {
      const sep = ctx.attrs.str('separator');
      const ins = ctx.inputs.map((_, i) => ctx.input(i));
      let shape: number[] = [];
      for (const t of ins) if (t.shape.length > 0) shape = t.shape;
      const n = elementCount(shape);
      // Joined as bytes: TF strings are bytes, and decoding them as UTF-8 would alter any that are not.
      const sepBytes = enc.encode(sep);
      const lists = ins.map((t) => t.data as Uint8Array[]);
      const out: Uint8Array[] = [];
      for (let k = 0; k < n; k++) {
        const parts = lists.map((l) => (l.length === 1 ? l[0]! : l[k]!));
        const joined = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0) + sepBytes.length * Math.max(0, parts.length - 1));
        let at = 0;
        parts.forEach((p, i) => {
          if (i > 0) {
            joined.set(sepBytes, at);
            at += sepBytes.length;
          }
          joined.set(p, at);
          at += p.length;
        });
        out.push(joined);
      }
      return [{ dtype: 'DT_STRING', shape, data: out }];
    },
  },
  ShardedFilename: (ctx) => {
    const base = stringsOf(ctx.input(0))[0] ?? '';
    const shard = Number(scalarOf(ctx.input(1)));
    const num = Number(scalarOf(ctx.input(2)));
    const pad = (n: number) => String(n).padStart(5, '0');
    return [{ dtype: 'DT_STRING', shape: [], data: [enc.encode(`${base}-${pad(shard)}-of-${pad(num)}`)] }];
  },
  StaticRegexFullMatch: (ctx) => {
    const t = ctx.input(0);
    const re = new RegExp(`^(?:${ctx.attrs.str('pattern')})$`, 'u');
    return [{ dtype: 'DT_BOOL', shape: t.shape, data: Uint8Array.from(stringsOf(t), (s) => (re.test(s) ? 1 : 0)) }];
  },
});

function whileLoop(ctx: KernelContext): Value[] {
  const cond = ctx.attrs.func('cond');
  const body = ctx.attrs.func('body');
  let vars: Value[] = ctx.inputs;
  for (let iter = 0; ; iter++) {
    const [c] = ctx.session.callFunction(cond.name, cond.attr, vars);
    if (!c || !truthy(readValue(c))) return vars;
    vars = ctx.session.callFunction(body.name, body.attr, vars);
    if (iter > 1e7) throw invalidArg('While loop ran more than 10^7 iterations');
  }
}

