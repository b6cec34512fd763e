// A bundle's manifest.json (model/BUNDLE.md), typed. The JSON Schema in model/manifest.schema.json is the
// authority: bundle.ts validates against it before this type is trusted, and the type itself is generated from it
// (manifest.generated.ts, `npm run contracts`). This module only names the parts the worker uses.
import type { PostprocessConstants } from './postprocess/types.js';
import { GRAPH_NAMES, OPTIONAL_GRAPH_NAMES, type Manifest, type Precision } from './manifest.generated.js';

export type { Manifest, Precision };

/** The graphs every bundle has. */
export const GRAPHS = GRAPH_NAMES;
export type GraphName = (typeof GRAPHS)[number];
/** Graphs a bundle may have: decoder_generate (greedy decoding in one run; bundles exported before it lack it). */
export const OPTIONAL_GRAPHS = OPTIONAL_GRAPH_NAMES;
export type OptionalGraphName = (typeof OPTIONAL_GRAPHS)[number];

export type Variant = Manifest['variant'];
export type Templates = Manifest['templates'];

// Compile-time checks that the generated types still fit what the code relies on.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
/** GRAPHS and OPTIONAL_GRAPHS name exactly the graphs of a precision. */
export type GraphsMatch = Assert<Same<GraphName | OptionalGraphName, keyof Precision['graphs']>>;
/** postprocess/types.ts keeps its own copy of the section (the post-processing has no manifest import). */
export type PostprocessMatches = Assert<Same<Manifest['postprocess'], PostprocessConstants>>;
