// Type of the BullMQ script module bullmq-add.ts imports (BullMQ types it only in its ESM build, which Node
// does not load for this package).
declare module 'bullmq/dist/cjs/scripts/addStandardJob-9.js' {
  export const addStandardJob: { name: string; content: string; keys: number };
}
