#!/bin/sh
# Builds the folder the Lambda functions run from (.data/lambda-asset): the compiled gateway (same tsconfig
# as the images), its Redis scripts and the production dependencies for linux-x64, without ONNX Runtime (the gateway never
# loads it; it would also push the function past Lambda's 250 MB limit). Run from the repository root.
set -eu
out=.data/lambda-asset
rm -rf "$out"
mkdir -p "$out"
echo "build-lambda: compiling"
npx tsc -p docker/tsconfig.build.json --outDir "$out/dist"
cp package.json package-lock.json .npmrc "$out/"
# The Redis scripts, which lib/redis/lua.ts finds above dist/.
mkdir -p "$out/lib/redis" && cp -r lib/redis/lua "$out/lib/redis/"
echo "build-lambda: installing production dependencies for linux-x64"
(cd "$out" && npm ci --omit=dev --no-audit --no-fund --os=linux --cpu=x64 && rm -rf node_modules/onnxruntime-node && rm -f package-lock.json .npmrc)
du -sh "$out" | sed 's/^/build-lambda: /'
