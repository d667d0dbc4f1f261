// Types of the ruvector-graph-attn service client.

export type Id = number | string;

export interface ScorerOptions {
  /** scorer alias, e.g. "attention", "vector", "hyperbolic", "ppr", "gat" (server default if omitted) */
  scorer?: string;
  hops?: number;
  candidates?: number;
  temperature?: number;
  blend?: number;
  direction?: 'out' | 'in' | 'both';
  maxNeighbors?: number;
}

export interface SearchOptions extends ScorerOptions {
  k?: number;
  /** allow-list: only these ids can be returned */
  filter?: Id[];
}

export interface RerankOptions extends ScorerOptions {
  k?: number;
  /** the other retriever's scores of the candidates (same order) */
  scores?: number[];
}

export interface EmbedOptions {
  method?: 'attention' | 'mean' | 'sum' | 'max';
  query?: number[];
  hops?: number;
}

export interface TraverseStep {
  relationshipTypes?: string[] | null;
  direction?: 'out' | 'in' | 'both';
  topK?: number;
}

export interface TraverseOptions {
  query?: number[];
  temperature?: number;
  allowRevisit?: boolean;
}

export interface Hit {
  id: Id;
  score: number;
  vectorScore: number;
  rank: number;
  vectorRank: number;
  inGraph: boolean;
  contextScore: number | null;
  /** explanation: neighbour ids and weights, largest first */
  attention: { id: Id; weight: number }[];
}

export interface TraversePath {
  nodes: Id[];
  weights: number[];
  score: number;
  rank: number;
}

export interface Health {
  status: 'ok';
  version: string;
  dim: number;
  index_size: number;
  graph: string;
  scorers: string[];
  default_scorer: string;
}

export class RgaServiceError extends Error {
  /** the library's error class, e.g. "DimensionMismatchError"; "ConnectionError" when unreachable */
  error: string;
  /** HTTP status (0 for transport failures) */
  status: number;
  body?: { error: string; message: string; status: number; [key: string]: unknown };
}

export class RgaClient {
  constructor(options: { url: string; token?: string; timeoutMs?: number; fetch?: typeof fetch });
  readonly url: string;
  search(vector: number[], opts?: SearchOptions): Promise<Hit[]>;
  searchBatch(vectors: number[][], opts?: SearchOptions): Promise<Hit[][]>;
  rerank(vector: number[], ids: Id[], opts?: RerankOptions): Promise<Hit[]>;
  embed(ids: Id[], opts?: EmbedOptions): Promise<number[]>;
  vectors(ids: Id[]): Promise<number[][]>;
  traverse(startIds: Id[], steps: TraverseStep[], opts?: TraverseOptions): Promise<TraversePath[]>;
  health(): Promise<Health>;
  metrics(): Promise<string>;
}
