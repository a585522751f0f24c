/**
 * Attachments over the media HTTP API (docs/media.md):
 *
 *   upload:   hash the file -> POST /v1/media -> PUT the bytes to the signed upload_url
 *             with its upload_headers (XMLHttpRequest, for upload progress) ->
 *             POST /v1/media/{id}/complete -> the caller sends a message with media:[id]
 *   download: GET /v1/media/{id}/info (the record, with a small data: thumbnail) and
 *             GET /v1/media/{id} with the bearer token, a 302 to a signed URL that fetch
 *             follows; the bytes become an object URL. 202 means a cold item is being
 *             restored: try again after Retry-After.
 */
import type { MediaRecord, MediaUploadTicket } from '@mqtt-chat/client';
import { apiJson, authedFetch, errorOf, ApiError } from './api.ts';
import { sha256Hex } from './sha256.ts';
import type { Session } from './session.ts';
import { isImage } from './model.ts';

export interface UploadProgress {
  loaded: number;
  total: number;
}

/** PUTs `body` with upload progress events; rejects on abort, network error or a non-2xx status. */
function putWithProgress(url: string, headers: Record<string, string>, body: Blob, onProgress: (p: UploadProgress) => void, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : body.size });
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress({ loaded: body.size, total: body.size });
        resolve();
        return;
      }
      let message = `upload failed with HTTP ${xhr.status}`;
      try {
        message = (JSON.parse(xhr.responseText) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // S3 answers XML
      }
      reject(new ApiError(xhr.status, 'upload_failed', message));
    };
    xhr.onerror = () => reject(new ApiError(0, 'disconnected', 'the upload was interrupted (network error)'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled'));
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** Uploads `file` to conversation `conv`; resolves to the completed record. */
export async function uploadFile(session: Session, conv: string, file: File, onProgress: (p: UploadProgress) => void, signal: AbortSignal): Promise<MediaRecord> {
  const contentType = file.type || 'application/octet-stream';
  const sha256 = await sha256Hex(await file.arrayBuffer());
  const ticket = await apiJson<MediaUploadTicket>(session, 'POST', '/v1/media', { conv, content_type: contentType, size: file.size, sha256 });
  const id = ticket.media.id;
  const headers = ticket.upload_headers ?? { 'content-type': contentType };
  await putWithProgress(new URL(ticket.upload_url, session.origin).href, headers, file, onProgress, signal);
  return apiJson<MediaRecord>(session, 'POST', `/v1/media/${encodeURIComponent(id)}/complete`, {});
}

export type MediaState =
  | { status: 'loading'; record?: MediaRecord }
  | { status: 'ready'; record: MediaRecord; url?: string }
  | { status: 'restoring'; record?: MediaRecord; retryAfter: number }
  | { status: 'error'; record?: MediaRecord; message: string };

/**
 * What this page knows about each media id: the record and, for images, an object URL of
 * the full image. `onChange` is called whenever an entry changes (the chat re-renders).
 */
export class MediaLibrary {
  readonly #entries = new Map<string, MediaState>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    private readonly session: Session,
    private readonly onChange: (id: string) => void,
  ) {}

  get(id: string): MediaState | undefined {
    return this.#entries.get(id);
  }

  /** Our own upload: the record from `complete`, and the local file as the full image. */
  remember(record: MediaRecord, file?: Blob): void {
    const url = file && isImage(record.content_type) ? URL.createObjectURL(file) : undefined;
    this.#entries.set(record.id, url ? { status: 'ready', record, url } : { status: 'ready', record });
    this.onChange(record.id);
  }

  /** Starts loading `id` unless known. */
  want(id: string): void {
    if (this.#entries.has(id)) return;
    this.#entries.set(id, { status: 'loading' });
    void this.#load(id);
  }

  async #load(id: string): Promise<void> {
    let record: MediaRecord | undefined;
    try {
      record = await apiJson<MediaRecord>(this.session, 'GET', `/v1/media/${encodeURIComponent(id)}/info`);
      this.#set(id, { status: 'loading', record });
      if (record.state === 'deleted') {
        this.#set(id, { status: 'error', record, message: 'This file is no longer available' });
        return;
      }
      if (!isImage(record.content_type)) {
        this.#set(id, { status: 'ready', record });
        return;
      }
      const response = await authedFetch(this.session, `/v1/media/${encodeURIComponent(id)}`);
      if (response.status === 202) {
        const retryAfter = Math.min(3600, Math.max(1, Number(response.headers.get('retry-after')) || 30));
        this.#set(id, { status: 'restoring', record, retryAfter });
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#entries.delete(id);
          this.want(id);
        }, retryAfter * 1000);
        this.#timers.add(timer);
        return;
      }
      if (!response.ok) throw await errorOf(response);
      const url = URL.createObjectURL(await response.blob());
      this.#set(id, { status: 'ready', record, url });
    } catch (error) {
      this.#set(id, { status: 'error', ...(record ? { record } : {}), message: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Downloads a non-image attachment and hands it to the browser as a file. */
  async download(id: string, filename: string): Promise<void> {
    const response = await authedFetch(this.session, `/v1/media/${encodeURIComponent(id)}`);
    if (response.status === 202) throw new ApiError(202, 'restoring', 'The file is being restored from the archive; try again later');
    if (!response.ok) throw await errorOf(response);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  #set(id: string, state: MediaState): void {
    this.#entries.set(id, state);
    this.onChange(id);
  }

  dispose(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    for (const entry of this.#entries.values()) if (entry.status === 'ready' && entry.url) URL.revokeObjectURL(entry.url);
    this.#entries.clear();
  }
}
