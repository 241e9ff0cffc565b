// The control API over fetch: same-origin, JSON bodies (the guard refuses others), the session cookie
// carried by the browser. A 401 anywhere calls the handler the page registered (the token prompt).

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.field = body?.field ?? null;
  }
}

let unauthorized = () => {};

export function onUnauthorized(handler) {
  unauthorized = handler;
}

export async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => null);
  if (response.status === 401 && path !== "/api/v1/login") unauthorized();
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

/** Poll a job until it ends; `onUpdate` sees each state. */
export async function untilDone(job, onUpdate = () => {}, every = 300) {
  let current = job;
  onUpdate(current);
  while (current.state === "queued" || current.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, every));
    current = (await get(`/api/v1/jobs/${encodeURIComponent(current.id)}`)).job;
    onUpdate(current);
  }
  return current;
}

export const fileUrl = (id, what) => `/api/v1/files/${encodeURIComponent(id)}${what ? `/${what}` : ""}`;
