// Storage keys derived from the job id: one prefix per job, so retention can drop a job's objects together.

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const JOBS_PREFIX = 'jobs/';
/** Presigned uploads (POST /v1/uploads): `uploads/{key id}/{uuid}`. */
export const UPLOADS_PREFIX = 'uploads/';

function prefix(jobId: string): string {
  if (!JOB_ID.test(jobId)) throw new Error(`invalid job id "${jobId}" for a storage key`);
  return `${JOBS_PREFIX}${jobId}/`;
}

export const inputKey = (jobId: string): string => `${prefix(jobId)}input`;
export const resultKey = (jobId: string): string => `${prefix(jobId)}result.json`;
export const overlayKey = (jobId: string): string => `${prefix(jobId)}overlay.png`;
