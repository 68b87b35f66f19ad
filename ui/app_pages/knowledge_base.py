"""The admin page of the knowledge base: upload files (a progress bar, then each file's result), add a website
(crawled there and then, every page's result shown), re-sync or remove a kept one, list and delete documents,
and the retrieval test: one query's BM25, dense and fused rankings side by side, with scores and the chunks'
text. The document and chunk counts at the top are read again after an upload or a crawl in the same run, so they
are fresh at once. Everything goes through the gate (`app.access.gate`) as the signed-in admin."""

import streamlit as st

from app.access.auth import ADMIN
from ui import session
from ui.i18n import t
from ui.rendering import escape_markdown, plain_cell, render_hit
from ui.resources import show_error

ACCEPTED = ["md", "markdown", "txt", "csv", "xlsx", "jsonl", "pdf", "docx", "html", "htm",
            "png", "jpg", "jpeg", "tif", "tiff", "webp"]  # fmt: skip
STATUS_ICONS = {"indexed": "✔", "unchanged": "=", "failed": "✖", "skipped": "–"}
RANKINGS = ("lexical", "dense", "hybrid")

control = session.page_access(ADMIN)
st.title(t("kb_title"))

try:
    stats = control.stats()
    generator = control.generator_status()
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

counts = st.container()  # filled at the end of the run, after whatever this run added
st.caption(escape_markdown(t("kb_models", models=", ".join(stats.get("embedding_models") or []) or t("kb_models_none"))))
st.caption(t("kb_generator", backend=generator["backend"]) + escape_markdown(generator["reason"]))
changed = False

upload_tab, sites_tab, documents_tab, test_tab = st.tabs(
    [t("kb_tab_files"), t("kb_tab_sites"), t("kb_tab_documents"), t("kb_tab_test")]
)


def run_ingest(start, unit: str) -> bool:
    """Run an ingest with a progress bar, then show its summary and each file's (or page's) result (`unit`:
    "files" or "pages"); True when it ran."""
    bar = st.progress(0.0, text=t("kb_reading"))

    def progress(p) -> None:
        bar.progress(
            min(1.0, p.files_done / max(1, p.files_total)),
            text=t(f"kb_progress_{unit}", done=p.files_done, total=p.files_total, documents=p.documents, chunks=p.chunks),
        )

    try:
        report = start(progress)
    except Exception as exc:
        show_error(exc, staff=True)
        return False
    bar.progress(1.0, text=t("done"))
    summary = report.summary
    st.success(
        t("kb_summary", indexed=summary["indexed"], unchanged=summary["unchanged"], failed=summary["failed"],
          skipped=summary["skipped"], chunks=summary["chunks"], seconds=summary["seconds"])
        + (t("kb_pruned", n=summary["pruned"]) if summary["pruned"] else "")
    )  # fmt: skip
    for site in report.sites:
        if not site["complete"]:
            st.warning(escape_markdown(t("kb_crawl_stopped", scope=site["scope"], reason=site["stopped"])))
    st.dataframe(
        [
            {"": STATUS_ICONS.get(f.status, ""), t("col_file" if unit == "files" else "col_page"): plain_cell(f.path),
             t("col_status"): f.status, t("col_chunks"): f.chunks, t("col_problem"): plain_cell(f.error or "")}
            for f in report.files
        ],
        hide_index=True,
    )  # fmt: skip
    return True


with upload_tab:
    uploads = st.file_uploader(t("kb_upload"), type=ACCEPTED, accept_multiple_files=True)
    if uploads and st.button(t("kb_index_files"), type="primary"):
        changed |= run_ingest(lambda progress: control.ingest_uploads([(f.name, f.getvalue()) for f in uploads],
                                                                      on_progress=progress), "files")  # fmt: skip

with sites_tab:
    st.caption(t("kb_sites_caption"))
    with st.form("add_site"):
        address = st.text_input(t("kb_site_address"), placeholder="https://help.example.com/hc/en-us/")
        add = st.form_submit_button(t("kb_crawl"), type="primary")
    if add and address.strip():
        changed |= run_ingest(lambda progress: control.add_site(address, on_progress=progress), "pages")
    sites = control.sites()
    if not sites:
        st.info(t("kb_no_sites"))
    else:
        rows = []
        for site in sites:
            last = (site.last_sync or {}).get("summary") or {}
            crawl = (site.last_sync or {}).get("crawl") or {}
            rows.append({t("col_site"): plain_cell(site.url), t("col_collection"): site.collection,
                         t("col_audience"): site.audience, t("col_last_synced"): site.last_synced_at or "",
                         t("col_pages"): last.get("files", 0), t("col_failed"): last.get("failed", 0),
                         t("col_complete"): bool(crawl.get("complete"))})  # fmt: skip
        st.dataframe(rows, hide_index=True)
        chosen = st.selectbox(t("kb_site"), [site.url for site in sites], format_func=lambda u: plain_cell(u, 100))
        prune = st.checkbox(t("kb_prune"))
        resync, remove = st.columns(2)
        if resync.button(t("kb_resync"), type="primary"):
            changed |= run_ingest(lambda progress: control.sync_site(chosen, prune, on_progress=progress), "pages")
        if remove.button(t("kb_remove_site")):
            try:
                removed, deleted = control.remove_site(chosen, delete_documents=True)
            except Exception as exc:
                show_error(exc, staff=True)
            else:
                st.success(escape_markdown(t("kb_site_removed", url=removed.url, n=deleted)))
                st.rerun()

with documents_tab:
    documents = control.documents()
    if not documents:
        st.info(t("kb_empty"))
    else:
        st.dataframe(
            [
                {t("col_id"): d.doc_id, t("col_title"): plain_cell(d.title), t("col_kind"): d.kind,
                 t("col_language"): d.language, t("col_chunks"): d.chunks, t("col_collection"): d.collection,
                 t("col_audience"): d.audience, t("col_source"): plain_cell(d.source), t("col_updated"): d.updated_at}
                for d in documents
            ],
            hide_index=True,
        )  # fmt: skip
        titles = {d.doc_id: plain_cell(f"{d.title} ({d.source})", 100) for d in documents}
        chosen = st.multiselect(t("kb_delete_pick"), options=list(titles), format_func=titles.get)
        if chosen and st.button(t("kb_delete_one") if len(chosen) == 1 else t("kb_delete", n=len(chosen))):
            try:
                deleted = control.delete_documents(chosen)
            except Exception as exc:
                show_error(exc, staff=True)
            else:
                st.success(t("kb_deleted_one") if deleted == 1 else t("kb_deleted", n=deleted))
                st.rerun()

with test_tab:
    st.caption(t("kb_test_caption"))
    with st.form("retrieval_test"):
        query = st.text_input(t("kb_query"), placeholder=t("kb_query_placeholder"))
        k = st.slider(t("kb_results"), 1, 20, 5)
        run = st.form_submit_button(t("kb_search"), type="primary")
    if run and query.strip():
        try:
            rankings = control.compare_rankings(query, k)
        except Exception as exc:
            show_error(exc, staff=True)
        else:
            for column, mode in zip(st.columns(len(RANKINGS)), RANKINGS):
                with column:
                    st.subheader(t(f"kb_rank_{mode}"))
                    hits = rankings.get(mode, [])
                    if not hits:
                        st.caption(t("kb_nothing_dense" if mode == "dense" else "kb_nothing"))
                    for rank, hit in enumerate(hits, start=1):
                        render_hit(rank, hit)

with counts:
    if changed:  # read again: the counts above must show what this run added
        try:
            stats = control.stats()
        except Exception as exc:
            show_error(exc, staff=True)
    left, middle, right = st.columns(3)
    left.metric(t("kb_documents"), stats["documents"])
    middle.metric(t("kb_chunks"), stats["chunks"])
    right.metric(t("kb_store"), stats["store"])
