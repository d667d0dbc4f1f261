"""Framework adapters (ruvector_graph_attn.integrations) against the real LangChain, LlamaIndex and
neo4j-graphrag packages, through their own entry points: ``invoke``, ``ContextualCompressionRetriever``,
``retrieve``, a query engine with a node postprocessor, ``GraphRAG.search``. Rankings are compared
with ``GraphReranker.search`` / ``GraphReranker.rerank`` for the same query vector."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import ConfigError, InvalidInputError, UnknownIdError

from _require import import_or_unavailable
from _text_graph import QUERIES, corpus, reranker


@pytest.fixture(scope="module")
def data():
    texts, G, X, emb = corpus()
    return texts, G, X, emb, reranker(G, X)


def _qvec(emb, text):
    return np.asarray(emb([text])[0], dtype=np.float64)


def _same_hits(meta_list, hits, id_key="node_id"):
    assert [m[id_key] for m in meta_list] == [h.id for h in hits]
    np.testing.assert_allclose([m["score"] for m in meta_list], [h.score for h in hits], rtol=0, atol=1e-12)
    np.testing.assert_allclose([m["vector_score"] for m in meta_list], [h.vector_score for h in hits], atol=1e-12)
    for m, h in zip(meta_list, hits):
        assert m["rank"] == h.rank and m["vector_rank"] == h.vector_rank
        assert dict((k, w) for k, w in m["attention"]) == pytest.approx(h.attention)


def test_graph_changes_the_order_on_this_corpus(data):
    """The equality tests below are only meaningful if re-ranking is not the vector order."""
    texts, G, X, emb, rr = data
    moved = 0
    for q in QUERIES:
        hits = rr.search(_qvec(emb, q), k=8)
        moved += sum(h.rank != h.vector_rank for h in hits)
        assert all(abs(sum(h.attention.values()) - 1) < 1e-6 for h in hits)
    assert moved > 0


# ----------------------------------------------------------------------------- LangChain
def _adapter(framework: str, part: str, module: str):
    """The adapter module, after its framework (unavailable: skip, or fail under CI)."""
    import_or_unavailable(framework, part)
    return import_or_unavailable(f"ruvector_graph_attn.integrations.{module}", f"{part} adapter")


def _lc():
    return _adapter("langchain_core", "LangChain (langchain-core)", "langchain")


def test_langchain_retriever_invoke_equals_search(data):
    lc = _lc()
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    texts, G, X, emb, rr = data
    r = lc.LangChainGraphRetriever(reranker=rr, embedder=emb, k=5)
    assert isinstance(r, BaseRetriever)
    for q in QUERIES:
        docs = r.invoke(q)
        hits = rr.search(_qvec(emb, q), k=5)
        assert all(isinstance(d, Document) for d in docs)
        _same_hits([d.metadata for d in docs], hits)
        assert [d.page_content for d in docs] == [texts[h.id] for h in hits]
    assert len(r.invoke(QUERIES[0], k=2)) == 2                     # per-call k
    # batch entry point of the Runnable interface
    out = r.batch(QUERIES[:2])
    assert [[d.metadata["node_id"] for d in o] for o in out] == \
        [[h.id for h in rr.search(_qvec(emb, q), k=5)] for q in QUERIES[:2]]


def test_langchain_retriever_errors(data):
    lc = _lc()
    texts, G, X, emb, rr = data
    r = lc.LangChainGraphRetriever(reranker=rr, embedder=emb)
    for bad in ("", "   "):
        with pytest.raises(InvalidInputError, match="empty"):
            r.invoke(bad)
    with pytest.raises(ConfigError, match="embedder"):
        lc.LangChainGraphRetriever(reranker=rr).invoke("graph")
    with pytest.raises(InvalidInputError):
        lc.LangChainGraphRetriever(reranker=rr, embedder=emb, k=0)
    with pytest.raises(InvalidInputError):
        lc.LangChainGraphRetriever(reranker=object(), embedder=emb)
    # an embedder returning the wrong dimension
    with pytest.raises(rga.DimensionMismatchError):
        lc.LangChainGraphRetriever(reranker=rr, embedder=lambda t: np.ones((len(t), 3))).invoke("graph")
    with pytest.raises(InvalidInputError, match="NaN"):
        lc.LangChainGraphRetriever(reranker=rr, embedder=lambda t: np.full((len(t), 64), np.nan)).invoke("graph")


def _lc_vectorstore(texts, emb, without_id=()):
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    class TestEmbeddings(Embeddings):
        def embed_documents(self, t):
            return emb(list(t)).tolist()

        def embed_query(self, t):
            return emb([t])[0].tolist()

    vs = InMemoryVectorStore(embedding=TestEmbeddings())
    docs = [Document(page_content=t, metadata={} if i in without_id else {"node_id": i}) for i, t in texts.items()]
    vs.add_documents(docs, ids=[f"d{i}" for i in texts])
    return vs


def test_langchain_compressor_in_contextual_compression_retriever(data):
    lc = _lc()
    ccr = import_or_unavailable("langchain_classic.retrievers", "LangChain (langchain-classic)")
    from langchain_core.documents import BaseDocumentCompressor

    texts, G, X, emb, rr = data
    base = _lc_vectorstore(texts, emb).as_retriever(search_kwargs={"k": 10})
    comp = lc.LangChainGraphReranker(reranker=rr, embedder=emb)
    assert isinstance(comp, BaseDocumentCompressor)
    pipe = ccr.ContextualCompressionRetriever(base_compressor=comp, base_retriever=base)
    for q in QUERIES:
        base_ids = [d.metadata["node_id"] for d in base.invoke(q)]
        docs = pipe.invoke(q)
        hits = rr.rerank(_qvec(emb, q), base_ids, k=len(base_ids))
        _same_hits([d.metadata for d in docs], hits)
        assert sorted(base_ids) == sorted(d.metadata["node_id"] for d in docs)
        assert [d.page_content for d in docs] == [texts[h.id] for h in hits]
    top = lc.LangChainGraphReranker(reranker=rr, embedder=emb, top_n=3)
    assert len(ccr.ContextualCompressionRetriever(base_compressor=top, base_retriever=base).invoke(QUERIES[0])) == 3


def test_langchain_compressor_equals_search_on_the_same_candidates(data):
    """Documents carrying exactly the candidates the index would give are ranked as search ranks them."""
    lc = _lc()
    from langchain_core.documents import Document

    texts, G, X, emb, rr = data
    # without graph candidates: search then scores exactly the index's candidates
    rr = rga.GraphReranker(rr.index, rr.graph, candidates=rr.candidates, graph_candidates=0)
    q = QUERIES[2]
    cand, _ = rr.index.search(_qvec(emb, q).reshape(1, -1), rr.candidates)
    docs = [Document(page_content=texts[int(i)], metadata={"node_id": int(i)}) for i in cand[0][::-1]]
    out = lc.LangChainGraphReranker(reranker=rr, embedder=emb, top_n=6).compress_documents(docs, q)
    hits = rr.search(_qvec(emb, q), k=6)
    assert [d.metadata["node_id"] for d in out] == [h.id for h in hits]
    np.testing.assert_allclose([d.metadata["score"] for d in out], [h.score for h in hits], atol=1e-9)


def test_langchain_compressor_policy_for_documents_without_id(data):
    lc = _lc()
    from langchain_core.documents import Document

    texts, G, X, emb, rr = data
    q = QUERIES[0]
    ids = [3, 9, 0, 14, 6]
    docs = [Document(page_content=texts[i], metadata={"node_id": i, "src": "kb"}) for i in ids]
    loose = [Document(page_content="no id here", metadata={"src": "web"}),
             Document(page_content="neither", metadata={"node_id": None})]
    mixed = [docs[0], loose[0], docs[1], docs[2], loose[1], docs[3], docs[4]]
    hits = rr.rerank(_qvec(emb, q), ids, k=len(ids))
    out = lc.LangChainGraphReranker(reranker=rr, embedder=emb).compress_documents(mixed, q)
    assert [d.metadata.get("node_id") for d in out] == [h.id for h in hits] + [None, None]
    assert out[-2] is loose[0] and out[-1] is loose[1]              # kept unchanged, input order, last
    assert all(d.metadata["src"] == "kb" for d in out[:5])          # own metadata kept next to ours
    assert "score" not in docs[0].metadata                           # inputs are not mutated
    dropped = lc.LangChainGraphReranker(reranker=rr, embedder=emb, without_id="drop").compress_documents(mixed, q)
    assert [d.metadata["node_id"] for d in dropped] == [h.id for h in hits]
    with pytest.raises(InvalidInputError, match="no node id"):
        lc.LangChainGraphReranker(reranker=rr, embedder=emb, without_id="error").compress_documents(mixed, q)
    with pytest.raises(ConfigError):
        lc.LangChainGraphReranker(reranker=rr, embedder=emb, without_id="sometimes")
    # only documents without ids: nothing to re-rank, all kept as they came
    assert lc.LangChainGraphReranker(reranker=rr, embedder=emb).compress_documents(loose, q) == loose
    # two chunks of one node stay together at the node's place, in input order
    chunk = Document(page_content="second chunk", metadata={"node_id": ids[2]})
    out2 = lc.LangChainGraphReranker(reranker=rr, embedder=emb).compress_documents(docs + [chunk], q)
    pos = [d.metadata["node_id"] for d in out2]
    at = pos.index(ids[2])
    assert pos[at + 1] == ids[2] and out2[at + 1].page_content == "second chunk"
    # a callable id_key
    by_fn = lc.LangChainGraphReranker(reranker=rr, embedder=emb, id_key=lambda d: int(d.id[1:]))
    fdocs = [Document(page_content=texts[i], id=f"d{i}") for i in ids]
    assert [d.metadata["node_id"] for d in by_fn.compress_documents(fdocs, q)] == [h.id for h in hits]


def test_langchain_compressor_bad_ids_and_empty_inputs(data):
    lc = _lc()
    from langchain_core.documents import Document

    texts, G, X, emb, rr = data
    comp = lc.LangChainGraphReranker(reranker=rr, embedder=emb)
    with pytest.raises(UnknownIdError):
        comp.compress_documents([Document(page_content="x", metadata={"node_id": 10_000})], "graph")
    with pytest.raises(InvalidInputError, match="not a usable id"):
        comp.compress_documents([Document(page_content="x", metadata={"node_id": [1, 2]})], "graph")
    with pytest.raises(InvalidInputError, match="empty"):
        comp.compress_documents([Document(page_content="x", metadata={"node_id": 1})], "")
    assert comp.compress_documents([], "graph") == []                 # nothing retrieved: nothing to rank
    with pytest.raises(InvalidInputError):
        lc.LangChainGraphReranker(reranker=rr, embedder=emb, top_n=0)
    with pytest.raises(InvalidInputError):
        lc.LangChainGraphReranker(reranker=rr, embedder=emb, id_key="")


# ----------------------------------------------------------------------------- LlamaIndex
def _li():
    return _adapter("llama_index.core", "LlamaIndex (llama-index-core)", "llamaindex")


def _li_embedding(emb):
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class TestEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query):
            return emb([query])[0].tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text):
            return emb([text])[0].tolist()

    return TestEmbedding(model_name="hashing-test", embed_batch_size=64)


def test_llamaindex_retriever_equals_search(data):
    li = _li()
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

    texts, G, X, emb, rr = data
    r = li.LlamaIndexGraphRetriever(rr, embedder=emb, k=5)
    assert isinstance(r, BaseRetriever)
    for q in QUERIES:
        nodes = r.retrieve(q)
        hits = rr.search(_qvec(emb, q), k=5)
        assert all(isinstance(n, NodeWithScore) for n in nodes)
        _same_hits([n.node.metadata for n in nodes], hits)
        np.testing.assert_allclose([n.score for n in nodes], [h.score for h in hits], atol=1e-12)
        assert [n.node.get_content() for n in nodes] == [texts[h.id] for h in hits]
    # the explanation stays out of the LLM text; the node id stays in
    llm_text = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert "attention" not in llm_text and "node_id" in llm_text
    # QueryBundle.embedding wins over the text
    other = _qvec(emb, QUERIES[1])
    nodes = r.retrieve(QueryBundle(QUERIES[0], embedding=other.tolist()))
    assert [n.node.metadata["node_id"] for n in nodes] == [h.id for h in rr.search(other, k=5)]
    # a LlamaIndex embedding model as the embedder
    r2 = li.LlamaIndexGraphRetriever(rr, embedder=_li_embedding(emb), k=5)
    assert [n.node.metadata["node_id"] for n in r2.retrieve(QUERIES[3])] == \
        [h.id for h in rr.search(_qvec(emb, QUERIES[3]), k=5)]


def test_llamaindex_retriever_errors(data):
    li = _li()
    from llama_index.core.schema import QueryBundle

    texts, G, X, emb, rr = data
    with pytest.raises(InvalidInputError, match="empty"):
        li.LlamaIndexGraphRetriever(rr, embedder=emb).retrieve("")
    with pytest.raises(ConfigError):
        li.LlamaIndexGraphRetriever(rr).retrieve("graph")
    with pytest.raises(rga.DimensionMismatchError):
        li.LlamaIndexGraphRetriever(rr).retrieve(QueryBundle("x", embedding=[0.1] * 5))
    with pytest.raises(InvalidInputError):
        li.LlamaIndexGraphRetriever(rr, embedder=emb, k=-1)


def _li_index(texts, emb, without_id=()):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    nodes = [TextNode(id_=f"doc{i}", text=t, metadata={} if i in without_id else {"node_id": i},
                      excluded_embed_metadata_keys=["node_id"], excluded_llm_metadata_keys=["node_id"])
             for i, t in texts.items()]
    return VectorStoreIndex(nodes, embed_model=_li_embedding(emb))


def test_llamaindex_postprocessor_in_query_engine(data):
    li = _li()
    from llama_index.core.llms import MockLLM
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.query_engine import RetrieverQueryEngine

    texts, G, X, emb, rr = data
    vindex = _li_index(texts, emb)
    base = vindex.as_retriever(similarity_top_k=10)
    pp = li.LlamaIndexGraphReranker(reranker=rr, embedder=emb, top_n=6)
    assert isinstance(pp, BaseNodePostprocessor)
    engine = RetrieverQueryEngine.from_args(base, llm=MockLLM(), node_postprocessors=[pp])
    for q in QUERIES:
        base_nodes = base.retrieve(q)
        base_ids = [n.node.metadata["node_id"] for n in base_nodes]
        resp = engine.query(q)
        hits = rr.rerank(_qvec(emb, q), base_ids, k=len(base_ids))[:6]
        src = resp.source_nodes
        _same_hits([n.node.metadata for n in src], hits)
        np.testing.assert_allclose([n.score for n in src], [h.score for h in hits], atol=1e-12)
        by_id = {n.node.metadata["node_id"]: n.score for n in base_nodes}
        np.testing.assert_allclose([n.node.metadata["retriever_score"] for n in src],
                                   [by_id[h.id] for h in hits], atol=1e-12)
        assert isinstance(resp.response, str)
    # our retriever in a query engine as well
    engine2 = RetrieverQueryEngine.from_args(li.LlamaIndexGraphRetriever(rr, embedder=emb, k=4), llm=MockLLM())
    assert [n.node.metadata["node_id"] for n in engine2.query(QUERIES[1]).source_nodes] == \
        [h.id for h in rr.search(_qvec(emb, QUERIES[1]), k=4)]


def test_llamaindex_postprocessor_uses_bundle_embedding_and_policy(data):
    li = _li()
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    texts, G, X, emb, rr = data
    ids = [5, 11, 17, 23, 2]
    nodes = [NodeWithScore(node=TextNode(text=texts[i], metadata={"node_id": i}), score=1.0 - 0.1 * k)
             for k, i in enumerate(ids)]
    loose = NodeWithScore(node=TextNode(text="no id", metadata={}), score=0.42)
    pp = li.LlamaIndexGraphReranker(reranker=rr)                   # no embedder: the bundle's embedding is used
    v = _qvec(emb, QUERIES[3])
    out = pp.postprocess_nodes(nodes[:2] + [loose] + nodes[2:], QueryBundle("ignored text", embedding=v.tolist()))
    hits = rr.rerank(v, ids, k=len(ids))
    assert [n.node.metadata.get("node_id") for n in out] == [h.id for h in hits] + [None]
    assert out[-1] is loose and out[-1].score == 0.42                 # kept at its original score, last
    with pytest.raises(ConfigError):                                  # text only and no embedder
        pp.postprocess_nodes(nodes, query_str="graph")
    with pytest.raises(InvalidInputError, match="query"):
        pp.postprocess_nodes(nodes)
    with pytest.raises(UnknownIdError):
        pp.postprocess_nodes([NodeWithScore(node=TextNode(text="x", metadata={"node_id": -7}), score=1.0)],
                             QueryBundle("x", embedding=v.tolist()))
    assert pp.postprocess_nodes([], QueryBundle("x", embedding=v.tolist())) == []
    dropped = li.LlamaIndexGraphReranker(reranker=rr, without_id="drop").postprocess_nodes(
        nodes + [loose], QueryBundle("x", embedding=v.tolist()))
    assert [n.node.metadata["node_id"] for n in dropped] == [h.id for h in hits]


def test_llamaindex_postprocessor_with_retriever_scores(data):
    li = _li()
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    texts, G, X, emb, rr = data
    ids = [5, 11, 17, 23, 2, 999]                                   # 999: not in the graph
    scores = [0.9, 0.1, 0.5, 0.3, 0.7, 0.95]
    nodes = [NodeWithScore(node=TextNode(text=texts.get(i, "outside"), metadata={"node_id": i}), score=s)
             for i, s in zip(ids, scores)]
    v = _qvec(emb, QUERIES[0])
    out = li.LlamaIndexGraphReranker(reranker=rr, use_retriever_scores=True).postprocess_nodes(
        nodes, QueryBundle("x", embedding=v.tolist()))
    hits = rr.rerank(v, ids, candidate_scores=scores, k=len(ids))
    _same_hits([n.node.metadata for n in out], hits)
    outside = [n for n in out if n.node.metadata["node_id"] == 999][0]
    assert outside.node.metadata["in_graph"] is False and outside.score == pytest.approx(0.95)
    # the graph-feature scores differ from the retriever's: the orders are not the same here
    assert [n.node.metadata["node_id"] for n in out] != [h.id for h in rr.rerank(v, ids[:-1], k=5)] + [999]


def test_retrievers_pass_a_filter_to_the_reranker(data):
    lc, li = _lc(), _li()
    texts, G, X, emb, rr = data
    q = QUERIES[0]
    allow = [i for i in texts if i % 3 == 0]
    want = rr.search(_qvec(emb, q), k=4, filter=allow)
    assert len(want) == 4 and all(h.id in allow for h in want)
    assert want != rr.search(_qvec(emb, q), k=4)                   # the filter matters for this query
    r = lc.LangChainGraphRetriever(reranker=rr, embedder=emb, k=4)
    _same_hits([d.metadata for d in r.invoke(q, filter=allow)], want)
    _same_hits([d.metadata for d in lc.LangChainGraphRetriever(reranker=rr, embedder=emb, k=4,
                                                               filter=lambda i: i % 3 == 0).invoke(q)], want)
    _same_hits([n.node.metadata for n in li.LlamaIndexGraphRetriever(rr, embedder=emb, k=4,
                                                                      filter=allow).retrieve(q)], want)


def test_adapters_fall_back_to_the_rerankers_embedder(data):
    lc, li, gr = _lc(), _li(), _gr()
    from langchain_core.documents import Document

    texts, G, X, emb, _ = data
    rr = reranker(G, X, embedder=emb)                                # text queries handled by GraphReranker
    q = QUERIES[2]
    want = [h.id for h in rr.search(q, k=4)]
    assert [d.metadata["node_id"] for d in lc.LangChainGraphRetriever(reranker=rr, k=4).invoke(q)] == want
    assert [n.node.metadata["node_id"] for n in li.LlamaIndexGraphRetriever(rr, k=4).retrieve(q)] == want
    assert [it.metadata["id"] for it in gr.GraphRAGRetriever(rr).search(query_text=q, top_k=4).items] == want
    ids = [7, 1, 30, 12]
    docs = [Document(page_content=texts[i], metadata={"node_id": i}) for i in ids]
    assert [d.metadata["node_id"] for d in lc.LangChainGraphReranker(reranker=rr).compress_documents(docs, q)] == \
        [h.id for h in rr.rerank(q, ids, k=4)]


# ----------------------------------------------------------------------------- neo4j-graphrag (in process)
class _Recorder:
    """Builds an LLMInterface subclass (the real neo4j-graphrag base) answering a fixed text and
    recording every prompt it receives."""

    @staticmethod
    def make():
        from neo4j_graphrag.llm import LLMInterface
        from neo4j_graphrag.llm.types import LLMResponse

        class RecordingLLM(LLMInterface):
            def __init__(self):
                super().__init__(model_name="recording")
                self.prompts = []

            def invoke(self, input, message_history=None, system_instruction=None):
                self.prompts.append(input)
                return LLMResponse(content="fixed answer")

            async def ainvoke(self, input, message_history=None, system_instruction=None):
                return self.invoke(input, message_history, system_instruction)

        return RecordingLLM()


def _gr():
    return _adapter("neo4j_graphrag", "neo4j-graphrag", "graphrag")


def test_graphrag_retriever_in_process_inside_graphrag(data):
    gr = _gr()
    from neo4j_graphrag.generation import GraphRAG
    from neo4j_graphrag.retrievers.base import Retriever
    from neo4j_graphrag.types import RetrieverResult

    texts, G, X, emb, rr = data
    ret = gr.GraphRAGRetriever(rr, embedder=emb)
    assert isinstance(ret, Retriever)
    res = ret.search(query_text=QUERIES[0], top_k=4)
    hits = rr.search(_qvec(emb, QUERIES[0]), k=4)
    assert isinstance(res, RetrieverResult)
    _same_hits([it.metadata for it in res.items], hits, id_key="id")
    assert [it.content for it in res.items] == [texts[h.id] for h in hits]
    assert [m["id"] for m in res.metadata["rga_hits"]] == [h.id for h in hits]
    # a query vector works without an embedder
    v = _qvec(emb, QUERIES[1])
    res_v = gr.GraphRAGRetriever(rr).search(query_vector=v.tolist(), top_k=3)
    assert [it.metadata["id"] for it in res_v.items] == [h.id for h in rr.search(v, k=3)]
    llm = _Recorder.make()
    rag = GraphRAG(retriever=ret, llm=llm)
    out = rag.search(query_text=QUERIES[0], retriever_config={"top_k": 4}, return_context=True)
    assert out.answer == "fixed answer"
    assert len(llm.prompts) == 1
    prompt = llm.prompts[0]
    pos = [prompt.index(texts[h.id]) for h in hits]
    assert pos == sorted(pos)                                        # the context is in re-ranked order
    assert QUERIES[0] in prompt
    assert [it.metadata["id"] for it in out.retriever_result.items] == [h.id for h in hits]


def test_graphrag_retriever_errors(data):
    gr = _gr()
    texts, G, X, emb, rr = data
    ret = gr.GraphRAGRetriever(rr, embedder=emb)
    with pytest.raises(InvalidInputError, match="exactly one"):
        ret.search(top_k=3)
    with pytest.raises(InvalidInputError, match="exactly one"):
        ret.search(query_text="graph", query_vector=[0.0] * 64)
    with pytest.raises(InvalidInputError, match="empty"):
        ret.search(query_text="")
    with pytest.raises(InvalidInputError):
        ret.search(query_text="graph", top_k=0)
    with pytest.raises(rga.DimensionMismatchError):
        ret.search(query_vector=[0.1, 0.2])
    with pytest.raises(ConfigError, match="embedder"):
        gr.GraphRAGRetriever(rr).search(query_text="graph")
    with pytest.raises(ConfigError, match="Neo4j"):
        gr.GraphRAGRetriever(rr, retrieval_query="RETURN node")     # a Cypher tail needs a driver
    with pytest.raises(InvalidInputError):
        ret.search(query_text="graph", query_params={"x": 1})        # only with a retrieval_query
    with pytest.raises(ConfigError, match="Neo4j"):
        ret.search(query_text="graph", filters={"topic": "graph"})    # property filters are evaluated in Neo4j


# ----------------------------------------------------------------------------- packaging
def test_import_without_the_frameworks():
    """``import ruvector_graph_attn`` and a search work with every framework import blocked; the
    adapters then fail with an ImportError naming the extra."""
    code = textwrap.dedent("""
        import sys
        BLOCKED = {"neo4j_graphrag", "langchain_core", "langchain_classic", "langchain", "llama_index"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked " + name)
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import ruvector_graph_attn as rga
        import ruvector_graph_attn.integrations as integ
        emb = integ.HashingEmbedder(16)
        X = emb(["a b", "b c", "c d", "d e"])
        idx = rga.HNSWIndex(dim=16, space="cosine"); idx.add([0, 1, 2, 3], X)
        import networkx as nx
        G = nx.path_graph(4)
        for i in G: G.nodes[i]["embedding"] = X[i]
        rr = rga.GraphReranker(idx, rga.connectors.NetworkXGraph(G), candidates=4)
        print("hits", [h.id for h in rr.search(emb(["b c"])[0], k=2)])
        for name in ("GraphRAGRetriever", "LangChainGraphRetriever", "LlamaIndexGraphReranker"):
            try:
                getattr(integ, name)
            except ImportError as e:
                print("missing", name, str(e).split(" (")[0])
        print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "hits [1," in out
    assert "missing GraphRAGRetriever GraphRAGRetriever needs the 'graphrag' extra: " \
           "pip install 'ruvector-graph-attn[graphrag]'" in out
    assert "missing LangChainGraphRetriever LangChainGraphRetriever needs the 'langchain' extra" in out
    assert "missing LlamaIndexGraphReranker LlamaIndexGraphReranker needs the 'llamaindex' extra" in out
    assert "loaded []" in out


def test_extras_declared():
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extras = meta["project"]["optional-dependencies"]
    names = lambda reqs: {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in reqs}  # noqa: E731
    assert names(extras["graphrag"]) == {"neo4j-graphrag"}
    assert names(extras["langchain"]) == {"langchain-core", "langchain-classic"}
    assert names(extras["llamaindex"]) == {"llama-index-core"}
    for extra in ("graphrag", "langchain", "llamaindex"):
        assert names(extras[extra]) <= names(extras["test"]), extra
    core = names(meta["project"]["dependencies"])
    assert not core & {"neo4j-graphrag", "langchain-core", "langchain-classic", "llama-index-core"}


def test_hashing_embedder_is_deterministic_across_processes():
    emb = rga.integrations.HashingEmbedder(32)
    texts = ["graph attention over neighbours", "Graph, attention!", "vector index", ""]
    E = emb(texts)
    assert E.shape == (4, 32) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(E[0:1], emb(["GRAPH attention over neighbours"]))   # case-insensitive
    assert float(E[0] @ E[1]) > 0.5 and emb.embed_query("vector index") == E[2].tolist()
    code = ("import sys, json; from ruvector_graph_attn.integrations import HashingEmbedder;"
            "print(json.dumps(HashingEmbedder(32)(sys.argv[1:]).tolist()))")
    import json
    import os

    for seed in ("1", "2"):
        r = subprocess.run([sys.executable, "-c", code, *texts[:3]], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        np.testing.assert_array_equal(np.asarray(json.loads(r.stdout), dtype=np.float32), E[:3])
    with pytest.raises(InvalidInputError):
        emb("not a list")
    with pytest.raises(InvalidInputError):
        emb(["ok", 3])
    with pytest.raises(InvalidInputError):
        rga.integrations.HashingEmbedder(0)
