"""Batch FAQ answering in the browser (agents and admins): upload a CSV or Excel sheet of questions, pick the
question column, answer every row with a progress bar, preview the result and download it as CSV or XLSX. The
engine is `kefu batch`'s (`app.answering.batch`), through the gate (`app.access.gate`)."""

import streamlit as st

from app.access.auth import AGENT
from ui import session
from ui.i18n import label, t
from ui.rendering import plain_cell
from ui.resources import show_error

RESULT_KEY = "kefu_batch_result"
PREVIEW_ROWS = 50
MIME = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

control = session.page_access(AGENT)
state = st.session_state
st.title(t("batch_title"))
st.caption(t("batch_caption"))

upload = st.file_uploader(t("batch_upload"), type=["csv", "xlsx"])
if upload is None:
    state.pop(RESULT_KEY, None)
    st.stop()

data = upload.getvalue()
try:
    table = control.batch_preview(upload.name, data)
except Exception as exc:
    show_error(exc, staff=True)
    st.stop()

column = st.selectbox(t("batch_column"), table.columns, index=table.question)
output = st.radio(t("batch_format"), [".csv", ".xlsx"], format_func=lambda f: f[1:].upper(), horizontal=True)
st.caption(t("batch_rows", n=len(table.rows)))
st.dataframe([{c: plain_cell(v) for c, v in zip(table.columns, row)} for row in table.rows[:5]], hide_index=True)

if st.button(t("batch_answer", n=len(table.rows)), type="primary", icon="▶️"):
    bar = st.progress(0.0, text=t("batch_answering"))

    def progress(p) -> None:
        bar.progress(p.done / max(1, p.total), text=t("batch_progress", done=p.done, total=p.total))

    try:
        state[RESULT_KEY] = (upload.file_id, control.answer_upload(upload.name, data, column, output, on_progress=progress))
    except Exception as exc:
        show_error(exc, staff=True)
    else:
        bar.progress(1.0, text=t("done"))

stored = state.get(RESULT_KEY)
if stored and stored[0] == upload.file_id:
    result = stored[1]
    report = result.report
    modes = ", ".join(f"{n} {label('mode', m)}" for m, n in sorted(report.modes.items(), key=lambda kv: -kv[1]))
    st.success(t("batch_done", rows=report.rows, seconds=f"{report.seconds:.1f}", modes=modes, errors=report.errors))
    st.dataframe([{c: plain_cell(v) for c, v in zip(result.columns, row)} for row in result.rows[:PREVIEW_ROWS]],
                 hide_index=True)  # fmt: skip
    suffix = result.filename[result.filename.rfind("."):]
    st.download_button(t("batch_download", name=result.filename), data=result.data, file_name=result.filename,
                       mime=MIME.get(suffix, "application/octet-stream"), type="primary", icon="⬇️")  # fmt: skip
