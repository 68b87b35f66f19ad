"""The admin page of the knowledge base: upload files (a progress bar, then each file's result), add a website
(crawled there and then, every page's result shown), re-sync or remove a kept one, list and delete documents,
and the retrieval test: one query's BM25, dense and fused rankings side by side, with scores and the chunks'
text. Everything goes through the gate (`app.access.gate`) as the signed-in admin."""

import streamlit as st

from app.access.auth import ADMIN
from ui import session
from ui.rendering import escape_markdown, plain_cell, render_hit
from ui.resources import show_error

ACCEPTED = ["md", "markdown", "txt", "csv", "xlsx", "jsonl", "pdf", "docx", "html", "htm",
            "png", "jpg", "jpeg", "tif", "tiff", "webp"]  # fmt: skip
STATUS_ICONS = {"indexed": "✔", "unchanged": "=", "failed": "✖", "skipped": "–"}
RANKINGS = (("lexical", "BM25", "bm25"), ("dense", "Dense (embeddings)", "cosine"), ("hybrid", "Fused (RRF)", "rrf"))

control = session.page_access(ADMIN)
st.title("Knowledge base")

try:
    stats = control.stats()
    generator = control.generator_status()
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

left, middle, right = st.columns(3)
left.metric("Documents", stats["documents"])
middle.metric("Chunks", stats["chunks"])
right.metric("Store", stats["store"])
st.caption(escape_markdown(f"Embedding models: {', '.join(stats.get('embedding_models') or []) or 'not chosen yet'}"))
st.caption(f"Answers are written by: **{generator['backend']}**. " + escape_markdown(generator["reason"]))

upload_tab, sites_tab, documents_tab, test_tab = st.tabs(["Add files", "Websites", "Documents", "Retrieval test"])


def run_ingest(start, unit: str) -> None:
    """Run an ingest with a progress bar, then show its summary and each file's (or page's) result."""
    bar = st.progress(0.0, text="Reading…")

    def progress(p) -> None:
        bar.progress(
            min(1.0, p.files_done / max(1, p.files_total)),
            text=f"{p.files_done}/{p.files_total} {unit} · {p.documents} documents · {p.chunks} chunks",
        )

    try:
        report = start(progress)
    except Exception as exc:
        show_error(exc, staff=True)
        return
    bar.progress(1.0, text="Done")
    summary = report.summary
    st.success(
        f"{summary['indexed']} indexed, {summary['unchanged']} unchanged, {summary['failed']} failed, "
        f"{summary['skipped']} skipped ({summary['chunks']} chunks written in {summary['seconds']} s)"
        + (f"; {summary['pruned']} pruned" if summary["pruned"] else "")
    )
    for site in report.sites:
        if not site["complete"]:
            st.warning(escape_markdown(f"The crawl of {site['scope']} stopped early: {site['stopped']}."))
    st.dataframe(
        [
            {"": STATUS_ICONS.get(f.status, ""), unit.rstrip("s"): plain_cell(f.path), "status": f.status, "chunks": f.chunks,
             "problem": plain_cell(f.error or "")}
            for f in report.files
        ],
        hide_index=True,
    )  # fmt: skip


with upload_tab:
    uploads = st.file_uploader(
        "Policies, manuals and FAQ sheets (Markdown, text, HTML, PDF, Word, FAQ CSV/Excel, JSONL), and scans "
        "(PNG, JPEG, TIFF, WebP; read by OCR)",
        type=ACCEPTED,
        accept_multiple_files=True,
    )
    if uploads and st.button("Index these files", type="primary"):
        run_ingest(lambda progress: control.ingest_uploads([(f.name, f.getvalue()) for f in uploads], on_progress=progress),
                   "files")  # fmt: skip

with sites_tab:
    st.caption("A help centre's pages: those its links and sitemap reach on the same site, under the address's path, "
               "as robots.txt allows. Each page is one document that answers cite by its address. Re-syncing fetches "
               "only what changed.")  # fmt: skip
    with st.form("add_site"):
        address = st.text_input("Website address", placeholder="https://help.example.com/hc/en-us/")
        add = st.form_submit_button("Crawl and index", type="primary")
    if add and address.strip():
        run_ingest(lambda progress: control.add_site(address, on_progress=progress), "pages")
    sites = control.sites()
    if not sites:
        st.info("No website is kept yet. Add one above, or run `kefu ingest https://...`.")
    else:
        rows = []
        for site in sites:
            last = (site.last_sync or {}).get("summary") or {}
            crawl = (site.last_sync or {}).get("crawl") or {}
            rows.append({"site": plain_cell(site.url), "collection": site.collection, "audience": site.audience,
                         "last synced": site.last_synced_at or "", "pages": last.get("files", 0),
                         "failed": last.get("failed", 0), "complete": bool(crawl.get("complete"))})  # fmt: skip
        st.dataframe(rows, hide_index=True)
        chosen = st.selectbox("Site", [site.url for site in sites], format_func=lambda u: plain_cell(u, 100))
        prune = st.checkbox("Also delete its pages that are gone or no longer linked")
        resync, remove = st.columns(2)
        if resync.button("Re-sync", type="primary"):
            run_ingest(lambda progress: control.sync_site(chosen, prune, on_progress=progress), "pages")
        if remove.button("Remove the site and its pages"):
            try:
                removed, deleted = control.remove_site(chosen, delete_documents=True)
            except Exception as exc:
                show_error(exc, staff=True)
            else:
                st.success(escape_markdown(f"{removed.url} removed, with {deleted} pages."))
                st.rerun()

with documents_tab:
    documents = control.documents()
    if not documents:
        st.info("The knowledge base is empty. Upload files, or run `kefu ingest PATH`.")
    else:
        st.dataframe(
            [
                {"id": d.doc_id, "title": plain_cell(d.title), "kind": d.kind, "language": d.language, "chunks": d.chunks,
                 "collection": d.collection, "audience": d.audience, "source": plain_cell(d.source), "updated": d.updated_at}
                for d in documents
            ],
            hide_index=True,
        )  # fmt: skip
        titles = {d.doc_id: plain_cell(f"{d.title} ({d.source})", 100) for d in documents}
        chosen = st.multiselect("Delete documents", options=list(titles), format_func=titles.get)
        if chosen and st.button(f"Delete {len(chosen)} document{'s' * (len(chosen) != 1)}"):
            try:
                deleted = control.delete_documents(chosen)
            except Exception as exc:
                show_error(exc, staff=True)
            else:
                st.success(f"Deleted {deleted} document{'s' * (deleted != 1)}.")
                st.rerun()

with test_tab:
    st.caption("How one query ranks chunks by BM25 alone, by embeddings alone, and fused (what answers use). "
               "Every audience is searched, internal documents included.")  # fmt: skip
    with st.form("retrieval_test"):
        query = st.text_input("Query", placeholder="How long do I have to return an item?")
        k = st.slider("Results per ranking", 1, 20, 5)
        run = st.form_submit_button("Search", type="primary")
    if run and query.strip():
        try:
            rankings = control.compare_rankings(query, k)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            for column, (mode, title, score_label) in zip(st.columns(len(RANKINGS)), RANKINGS):
                with column:
                    st.subheader(title)
                    hits = rankings.get(mode, [])
                    if not hits:
                        st.caption("Nothing found (dense: the embedding model cannot read this query)." if mode == "dense"
                                   else "Nothing found.")  # fmt: skip
                    for rank, hit in enumerate(hits, start=1):
                        render_hit(rank, hit, score_label)
