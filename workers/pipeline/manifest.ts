// A bundle's manifest.json (model/BUNDLE.md), typed. The JSON Schema in model/manifest.schema.json is the
// authority: bundle.ts validates against it before this type is trusted, and the type itself is generated from it
// (manifest.generated.ts, `npm run contracts`). This module only names the parts the worker uses.
import type { PostprocessConstants } from './postprocess/types.js';
import { GRAPH_NAMES, type Manifest, type Precision } from './manifest.generated.js';

export type { Manifest, Precision };

export const GRAPHS = GRAPH_NAMES;
export type GraphName = (typeof GRAPHS)[number];

export type Variant = Manifest['variant'];
export type Templates = Manifest['templates'];

// Compile-time checks that the generated types still fit what the code relies on.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
/** GRAPHS names exactly the graphs of a precision. */
export type GraphsMatch = Assert<Same<GraphName, keyof Precision['graphs']>>;
/** postprocess/types.ts keeps its own copy of the section (the post-processing has no manifest import). */
export type PostprocessMatches = Assert<Same<Manifest['postprocess'], PostprocessConstants>>;
