"""The admin page: upload files into the knowledge base, watch them being indexed, list and delete
documents. Everything it does goes through `app.services`."""

import streamlit as st

from ui.resources import get_service, show_error

ACCEPTED = ["md", "markdown", "txt", "csv", "xlsx", "jsonl", "pdf", "docx", "html", "htm"]
STATUS_ICONS = {"indexed": "✔", "unchanged": "=", "failed": "✖", "skipped": "–"}

st.title("Knowledge base")

try:
    service = get_service()
    stats = service.stats()
except Exception as exc:
    show_error(exc)
    st.stop()

left, middle, right = st.columns(3)
left.metric("Documents", stats["documents"])
middle.metric("Chunks", stats["chunks"])
right.metric("Store", stats["store"])
st.caption(f"Embedding models: {', '.join(stats.get('embedding_models') or []) or 'not chosen yet'}")
generator = service.generator_status()
st.caption(f"Answers are written by: **{generator['backend']}**. {generator['reason']}")

st.subheader("Add files")
uploads = st.file_uploader(
    "Policies, manuals and FAQ sheets (Markdown, text, HTML, PDF, Word, FAQ CSV/Excel, JSONL)",
    type=ACCEPTED,
    accept_multiple_files=True,
)
if uploads and st.button("Index these files", type="primary"):
    bar = st.progress(0.0, text="Reading files…")

    def progress(p) -> None:
        bar.progress(
            p.files_done / max(1, p.files_total),
            text=f"{p.files_done}/{p.files_total} files · {p.documents} documents · {p.chunks} chunks",
        )

    try:
        report = service.ingest_uploads([(f.name, f.getvalue()) for f in uploads], on_progress=progress)
    except Exception as exc:
        show_error(exc)
    else:
        bar.progress(1.0, text="Done")
        summary = report.summary
        st.success(
            f"{summary['indexed']} indexed, {summary['unchanged']} unchanged, {summary['failed']} failed, "
            f"{summary['skipped']} skipped ({summary['chunks']} chunks written in {summary['seconds']} s)"
        )
        st.dataframe(
            [
                {"": STATUS_ICONS.get(f.status, ""), "file": f.path, "status": f.status, "chunks": f.chunks,
                 "problem": f.error or ""}
                for f in report.files
            ],
            hide_index=True,
            use_container_width=True,
        )

st.subheader("Documents")
documents = service.documents()
if not documents:
    st.info("The knowledge base is empty. Upload files above, or run `kefu ingest PATH`.")
else:
    st.dataframe(
        [
            {"id": d.doc_id, "title": d.title, "kind": d.kind, "language": d.language, "chunks": d.chunks,
             "source": d.source, "updated": d.updated_at}
            for d in documents
        ],
        hide_index=True,
        use_container_width=True,
    )
    titles = {d.doc_id: f"{d.title} ({d.source})" for d in documents}
    chosen = st.multiselect("Delete documents", options=list(titles), format_func=titles.get)
    if chosen and st.button(f"Delete {len(chosen)} document{'s' * (len(chosen) != 1)}"):
        try:
            deleted = service.delete_documents(chosen)
        except Exception as exc:
            show_error(exc)
        else:
            st.success(f"Deleted {deleted} document{'s' * (deleted != 1)}.")
            st.rerun()
