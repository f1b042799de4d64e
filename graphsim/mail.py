"""Mail folders and messages: enough of Outlook mail for folders, listing, MIME, sendMail and delta."""

from __future__ import annotations

import base64
import email.message
import email.utils
from typing import Any

from . import events as ev_mod
from .store import Folder, Mailbox, Store
from .util import GraphError, iso_seconds, new_guid, new_item_id, now


def render_folder(mb: Mailbox, f: Folder) -> dict[str, Any]:
    msgs = [m for m in mb.messages.values() if m["parentFolderId"] == f.id]
    return {
        "id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_id or f"root-{mb.id}",
        "childFolderCount": sum(1 for c in mb.folders.values() if c.parent_id == f.id),
        "unreadItemCount": sum(1 for m in msgs if not m["isRead"]), "totalItemCount": len(msgs),
        "isHidden": False,
    }


def folder(mb: Mailbox, name: str) -> Folder:
    f = mb.folder_by_name(name)
    if f is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return f


def create_folder(store: Store, mb: Mailbox, parent: Folder | None, name: str) -> Folder:
    with store.lock:
        if not name:
            raise GraphError(400, "ErrorInvalidRequest", "The displayName property is required.")
        pid = parent.id if parent else None
        if any(f.parent_id == pid and f.display_name.lower() == name.lower() for f in mb.folders.values()):
            raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        f = Folder(id=new_item_id(b"FLD0"), user_id=mb.id, display_name=name, parent_id=pid)
        mb.folders[f.id] = f
        return f


def delete_folder(store: Store, mb: Mailbox, f: Folder) -> None:
    with store.lock:
        if f.well_known:
            raise GraphError(400, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
        for child in [c for c in mb.folders.values() if c.parent_id == f.id]:
            delete_folder(store, mb, child)
        for m in [m for m in mb.messages.values() if m["parentFolderId"] == f.id]:
            del mb.messages[m["id"]]
            store.log(mb, "message", m["id"], f.id, "deleted")
        del mb.folders[f.id]


def _recips(items: list[dict] | None) -> list[dict]:
    out = []
    for r in items or []:
        ea = (r or {}).get("emailAddress") or {}
        out.append({"emailAddress": {"name": ea.get("name") or ea.get("address", ""),
                                     "address": ea.get("address", "")}})
    return out


def add_message(store: Store, mb: Mailbox, f: Folder, msg: dict[str, Any], sender: dict,
                is_read: bool = False, is_draft: bool = False) -> dict[str, Any]:
    with store.lock:
        t = now()
        ck = ev_mod.change_key()
        body = msg.get("body") or {"contentType": "text", "content": ""}
        attachments = []
        for a in msg.get("attachments") or []:
            raw = base64.b64decode(a.get("contentBytes") or "")
            attachments.append({"@odata.type": a.get("@odata.type", "#microsoft.graph.fileAttachment"),
                                "id": new_item_id(b"ATT0"), "name": a.get("name", "attachment"),
                                "contentType": a.get("contentType") or "application/octet-stream",
                                "size": len(raw), "isInline": bool(a.get("isInline")),
                                "contentBytes": base64.b64encode(raw).decode()})
        m: dict[str, Any] = {
            "@odata.etag": f'W/"{ck}"', "id": new_item_id(b"MSG0"), "createdDateTime": iso_seconds(t),
            "lastModifiedDateTime": iso_seconds(t), "changeKey": ck, "categories": list(msg.get("categories") or []),
            "receivedDateTime": iso_seconds(t), "sentDateTime": iso_seconds(t), "hasAttachments": bool(attachments),
            "internetMessageId": f"<{new_guid()}@graphsim.local>", "subject": msg.get("subject") or "",
            "bodyPreview": ev_mod.body_preview(body), "importance": msg.get("importance") or "normal",
            "parentFolderId": f.id, "conversationId": new_item_id(b"CNV0"),
            "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False, "isRead": is_read,
            "isDraft": is_draft, "webLink": "https://outlook.office365.com/owa/?ItemID=graphsim",
            "inferenceClassification": "focused", "body": body,
            "sender": sender, "from": sender, "toRecipients": _recips(msg.get("toRecipients")),
            "ccRecipients": _recips(msg.get("ccRecipients")), "bccRecipients": _recips(msg.get("bccRecipients")),
            "replyTo": _recips(msg.get("replyTo")), "flag": {"flagStatus": "notFlagged"},
        }
        m["_attachments"] = attachments
        mb.messages[m["id"]] = m
        store.log(mb, "message", m["id"], f.id, "created")
        return m


def public(m: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if not k.startswith("_")}
    if select:
        keep = {s.strip() for s in select} | {"id", "@odata.etag"}
        out = {k: v for k, v in out.items() if k in keep}
    return out


def message(mb: Mailbox, mid: str) -> dict[str, Any]:
    m = mb.messages.get(mid)
    if m is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return m


def delete_message(store: Store, mb: Mailbox, mid: str) -> None:
    with store.lock:
        m = message(mb, mid)
        del mb.messages[mid]
        store.log(mb, "message", mid, m["parentFolderId"], "deleted")


def mime(m: dict[str, Any]) -> bytes:
    msg = email.message.EmailMessage()
    def addr(r: dict) -> str:
        ea = r["emailAddress"]
        return email.utils.formataddr((ea.get("name") or "", ea.get("address") or ""))
    msg["From"] = addr(m["from"])
    if m["toRecipients"]:
        msg["To"] = ", ".join(addr(r) for r in m["toRecipients"])
    if m["ccRecipients"]:
        msg["Cc"] = ", ".join(addr(r) for r in m["ccRecipients"])
    msg["Subject"] = m["subject"]
    msg["Message-ID"] = m["internetMessageId"]
    msg["Date"] = email.utils.format_datetime(now())
    subtype = "html" if m["body"].get("contentType", "").lower() == "html" else "plain"
    msg.set_content(m["body"].get("content") or "", subtype=subtype)
    for a in m.get("_attachments") or []:
        maintype, _, sub = a["contentType"].partition("/")
        msg.add_attachment(base64.b64decode(a["contentBytes"]), maintype=maintype or "application",
                           subtype=sub or "octet-stream", filename=a["name"])
    return msg.as_bytes()


def send_mail(store: Store, mb: Mailbox, body: dict[str, Any]) -> None:
    """sendMail: copy to Sent Items (unless saveToSentItems=false) and deliver to in-tenant recipients."""
    msg = body.get("message")
    if not isinstance(msg, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The 'message' parameter is required.")
    recips = (msg.get("toRecipients") or []) + (msg.get("ccRecipients") or []) + (msg.get("bccRecipients") or [])
    if not recips:
        raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't "
                         "be sent because it contains no recipients.")
    sender = {"emailAddress": {"name": mb.user["displayName"], "address": mb.user["mail"]}}
    with store.lock:
        if body.get("saveToSentItems", True) not in (False, "false"):
            add_message(store, mb, folder(mb, "sentitems"), msg, sender, is_read=True)
        for r in recips:
            addr = ((r or {}).get("emailAddress") or {}).get("address", "").lower()
            uid = store.by_upn.get(addr)
            if uid and uid in store.mailboxes:
                target = store.mailboxes[uid]
                add_message(store, target, folder(target, "inbox"), msg, sender)
