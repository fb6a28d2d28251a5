/**
 * Build step: stores the protobuf roots a SavedModel worker loads on every model (common/protos.ts
 * PRECOMPILED_ROOTS) as protobufjs JSON under dist/protos-json, so model threads skip parsing `.proto`
 * text. A root whose `.proto` sources changed after the build is parsed from the text again.
 */
import { writePrecompiledRoots } from '../common/protos.js';
import { isMainModule } from './make-example-models.js';

if (await isMainModule(import.meta.url)) {
  for (const file of writePrecompiledRoots()) console.log(`wrote ${file}`);
}
