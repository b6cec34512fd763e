// Secrets for Lambda processes, read once per cold start through the AWS Parameters and Secrets Lambda
// Extension (a layer serving Secrets Manager on localhost, authenticated with the function's session token).
// ECS tasks get the same secrets injected as environment variables instead; see infra/.

/** Returns `{ API_KEYS: <secret string> }` for API_KEYS_SECRET_ID, and so on; {} when none is configured. */
export async function secretsFromExtension(
  env: Record<string, string | undefined>,
  names: readonly string[],
): Promise<Record<string, string>> {
  const port = env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT ?? '2773';
  const out: Record<string, string> = {};
  for (const name of names) {
    const id = env[`${name}_SECRET_ID`];
    if (!id) continue;
    const token = env.AWS_SESSION_TOKEN;
    if (!token) throw new Error(`${name}_SECRET_ID is set but AWS_SESSION_TOKEN is not (not running in Lambda?)`);
    const res = await fetch(`http://localhost:${port}/secretsmanager/get?secretId=${encodeURIComponent(id)}`, {
      headers: { 'X-Aws-Parameters-Secrets-Token': token },
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) throw new Error(`${name}_SECRET_ID ${id}: the secrets extension answered ${res.status}`);
    const body = (await res.json()) as { SecretString?: string };
    if (typeof body.SecretString !== 'string') throw new Error(`${name}_SECRET_ID ${id}: the secret has no SecretString`);
    out[name] = body.SecretString;
  }
  return out;
}
