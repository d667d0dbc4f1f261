// Client of the ruvector-graph-attn HTTP/JSON service. No dependencies: it uses the global
// fetch (Node 18+, browsers, Deno, Bun). Types: index.d.ts.

/**
 * An error answered by the service (or a transport failure).
 * `error` is the library's error class (e.g. "DimensionMismatchError"), `status` the HTTP status
 * (0 when the service could not be reached or timed out on the client side).
 */
export class RgaServiceError extends Error {
  /**
   * @param {string} error
   * @param {string} message
   * @param {number} status
   * @param {object} [body]
   */
  constructor(error, message, status, body) {
    super(`${error}: ${message}`);
    this.name = 'RgaServiceError';
    this.error = error;
    this.status = status;
    this.body = body;
  }
}

const PARAMS = {
  scorer: 'scorer', hops: 'hops', candidates: 'candidates', temperature: 'temperature',
  blend: 'blend', direction: 'direction', maxNeighbors: 'max_neighbors',
};

function scorerParams(opts, body) {
  for (const [js, py] of Object.entries(PARAMS)) {
    if (opts[js] !== undefined && opts[js] !== null) body[py] = opts[js];
  }
  return body;
}

function toHit(h) {
  return {
    id: h.id,
    score: h.score,
    vectorScore: h.vector_score,
    rank: h.rank,
    vectorRank: h.vector_rank,
    inGraph: h.in_graph,
    contextScore: h.context_score,
    attention: h.attention.map(([id, weight]) => ({ id, weight })),
  };
}

export class RgaClient {
  /**
   * @param {object} options
   * @param {string} options.url base URL, e.g. "http://127.0.0.1:8765"
   * @param {string} [options.token] bearer token (omit for a service started with --no-auth)
   * @param {number} [options.timeoutMs] per-call timeout (default 30000)
   * @param {typeof fetch} [options.fetch] fetch implementation (default: the global one)
   */
  constructor({ url, token, timeoutMs = 30000, fetch: fetchImpl } = {}) {
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
      throw new TypeError('url must be an http(s) URL, e.g. "http://127.0.0.1:8765"');
    }
    this.url = url.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
    this._fetch = fetchImpl ?? globalThis.fetch;
    if (typeof this._fetch !== 'function') throw new TypeError('no fetch available: use Node 18+ or pass options.fetch');
    // kept off the enumerable properties so it does not show in console.log / JSON.stringify
    Object.defineProperty(this, '_token', { value: token, enumerable: false });
  }

  async _call(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this._token) headers.authorization = `Bearer ${this._token}`;
    let resp;
    try {
      resp = await this._fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const what = e && e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : String(e && e.cause ? e.cause : e);
      throw new RgaServiceError('ConnectionError', `${method} ${this.url}${path}: ${what}`, 0);
    }
    const text = await resp.text();
    if (!resp.ok) {
      let parsed;
      try { parsed = JSON.parse(text); } catch { parsed = undefined; }
      if (parsed && typeof parsed.error === 'string') {
        throw new RgaServiceError(parsed.error, parsed.message, resp.status, parsed);
      }
      throw new RgaServiceError('HttpError', `HTTP ${resp.status}: ${text.slice(0, 200)}`, resp.status);
    }
    return path === '/metrics' ? text : JSON.parse(text);
  }

  /**
   * Re-ranked nearest neighbours of one query vector.
   * @param {number[]} vector
   * @param {import('./index').SearchOptions} [opts]
   * @returns {Promise<import('./index').Hit[]>}
   */
  async search(vector, opts = {}) {
    const body = scorerParams(opts, { vector, k: opts.k ?? 10 });
    if (opts.filter) body.filter = opts.filter;
    const out = await this._call('POST', '/search', body);
    return out.results[0].map(toHit);
  }

  /**
   * Re-ranked nearest neighbours of several query vectors (one list per query).
   * @param {number[][]} vectors
   * @param {import('./index').SearchOptions} [opts]
   * @returns {Promise<import('./index').Hit[][]>}
   */
  async searchBatch(vectors, opts = {}) {
    const body = scorerParams(opts, { vectors, k: opts.k ?? 10 });
    if (opts.filter) body.filter = opts.filter;
    const out = await this._call('POST', '/search', body);
    return out.results.map((row) => row.map(toHit));
  }

  /**
   * Re-rank candidates from another retriever with the graph.
   * @param {number[]} vector
   * @param {(number|string)[]} ids
   * @param {import('./index').RerankOptions} [opts]
   * @returns {Promise<import('./index').Hit[]>}
   */
  async rerank(vector, ids, opts = {}) {
    const body = scorerParams(opts, { vector, ids, k: opts.k ?? 10 });
    if (opts.scores) body.scores = opts.scores;
    const out = await this._call('POST', '/rerank', body);
    return out.results.map(toHit);
  }

  /**
   * One vector for the subgraph around ids.
   * @param {(number|string)[]} ids
   * @param {import('./index').EmbedOptions} [opts]
   * @returns {Promise<number[]>}
   */
  async embed(ids, opts = {}) {
    const body = { ids, method: opts.method ?? 'attention' };
    if (opts.query) body.query = opts.query;
    if (opts.hops !== undefined) body.hops = opts.hops;
    const out = await this._call('POST', '/embed', body);
    return out.vector;
  }

  /**
   * Stored vectors of index ids (to query "like node X").
   * @param {(number|string)[]} ids
   * @returns {Promise<number[][]>}
   */
  async vectors(ids) {
    const out = await this._call('POST', '/vectors', { ids });
    return out.vectors;
  }

  /**
   * Attention-ranked paths from start ids.
   * @param {(number|string)[]} startIds
   * @param {import('./index').TraverseStep[]} steps
   * @param {import('./index').TraverseOptions} [opts]
   * @returns {Promise<import('./index').TraversePath[]>}
   */
  async traverse(startIds, steps, opts = {}) {
    const body = {
      start_ids: startIds,
      steps: steps.map((s) => ({
        relationship_types: s.relationshipTypes ?? null,
        direction: s.direction ?? 'out',
        top_k: s.topK ?? 3,
      })),
      temperature: opts.temperature ?? 1.0,
      allow_revisit: opts.allowRevisit ?? false,
    };
    if (opts.query) body.query = opts.query;
    const out = await this._call('POST', '/traverse', body);
    return out.paths;
  }

  /** @returns {Promise<import('./index').Health>} */
  async health() {
    return this._call('GET', '/health');
  }

  /** Prometheus text exposition. @returns {Promise<string>} */
  async metrics() {
    return this._call('GET', '/metrics');
  }
}
