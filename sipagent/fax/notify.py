"""Telling people about received faxes: e-mail with the PDF, and webhooks.

Recording a received fax queues its notifications in the fax outbox in the
same transaction as the fax's row (see :meth:`FaxStore.record_fax`);
:class:`sipagent.store.outbox_notifier.OutboxNotifier` drains it exactly as it
does voicemail's, through the same mail server (the ``[voicemail]``
section).  This file only says what a fax notification is.

A reception that failed is reported too, with what the line said about it:
the sender believes the fax went through or will try again, and the people
expecting it should know either way.  With no page received there is no PDF
to attach and no download to offer.
"""
from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sipagent.fax.json_shapes import fax_json
from sipagent.fax.store import FaxRecord, FaxStore, NoSuchFax
from sipagent.store.outbox_notifier import OutboxNotifier
from sipagent.store.outbox import Notification


class FaxNotifier(OutboxNotifier):
    """``FaxNotifier(store, settings, ...)``: the :class:`OutboxNotifier` of a
    :class:`FaxStore`."""
    kind = "fax"
    store: FaxStore

    def load(self, note: Notification) -> FaxRecord | None:
        try:
            return self.store.fax(note.item_id)
        except NoSuchFax:
            return None

    def log_fields(self, note: Notification) -> dict:
        return {"fax": note.item_id}

    def email_for(self, record: FaxRecord, to: list[str]) -> EmailMessage:
        pdf = record.pdf.read_bytes() if record.pdf is not None else None
        return compose_email(record, pdf, sender=self.settings.smtp_from, to=to)

    def webhook_body(self, record: FaxRecord) -> dict:
        fax = fax_json(record, base=self._base)
        return {"event": "fax.received", "fax": fax, "pdf_url": fax["pdf"],
                "tiff_url": fax["tiff"]}


def sender_name(record: FaxRecord) -> str:
    """Who sent it, as a person reads it: the station id the machine gave
    (often a company name), the number it called from, or both."""
    ident, number = record.remote_ident.strip(), record.remote
    if ident and number and ident != number:
        return f"{ident} ({number})"
    return ident or number or "an unknown sender"


def compose_email(record: FaxRecord, pdf: bytes | None, *, sender: str,
                  to: list[str]) -> EmailMessage:
    who = sender_name(record)
    pages = f"{record.pages} page{'' if record.pages == 1 else 's'}"
    mail = EmailMessage()
    mail["Subject"] = f"Fax from {who}: {pages}" + ("" if record.ok else " (incomplete)")
    mail["From"], mail["To"] = sender, ", ".join(to)
    mail["Date"] = formatdate(record.ended or record.started, localtime=True)
    mail["Message-ID"] = make_msgid("fax")
    result = "received in full" if record.ok else \
        f"failed: {record.status_text or 'no reason given'} (code {record.status})"
    minutes, seconds = divmod(round(record.seconds), 60)
    mail.set_content("\n".join([
        f"A fax was received from {who}." if record.ok else
        f"A fax from {who} was not received in full.",
        "",
        f"From:      {record.remote_ident or '-'}",
        f"Number:    {record.remote or '-'}",
        f"Time:      {datetime.fromtimestamp(record.started).astimezone():%Y-%m-%d %H:%M:%S %Z}",
        f"Pages:     {record.pages}",
        f"Result:    {result}",
        f"Line time: {minutes}:{seconds:02d}"
        + (f" at {record.bit_rate} bit/s" if record.bit_rate else ""),
        "",
        "The fax is attached as a PDF." if pdf is not None else "No page came through.",
    ]) + "\n")
    if pdf is not None:
        mail.add_attachment(pdf, maintype="application", subtype="pdf",
                            filename=f"fax-{record.id}.pdf")
    return mail
