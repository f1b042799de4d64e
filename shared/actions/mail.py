"""Mail folders and messages: list, create, delete, get, send."""

from __future__ import annotations

import base64
import email
import email.policy
from typing import Any

from shared.actions.catalogue import Input, InputError, action, paging_inputs, strings
from shared.actions.context import ActionContext, done, list_result, seg
from shared.jsontypes import JsonValue


def folder_id_input(required: bool, help_text: str, label: str = "Folder ID", name: str = "folder_id") -> Input:
    return Input(name, "string", label, required=required, help=help_text)


def message_id_input() -> Input:
    return Input("message_id", "string", "Message ID", required=True, help="The ID of a mail message.")


@action("List Mail Folders", "Get the mail folders directly under the root folder of the user, or under "
        "the given parent folder.",
        folder_id_input(False, "List the folders in this folder; omit for root-level folders.",
                        "Parent Folder ID", "parent_folder_id"),
        *paging_inputs(), area="mail")
def list_folders(ctx: ActionContext, v: dict[str, Any]) -> Any:
    parent = v.get("parent_folder_id")
    path = f"{ctx.me}/mailFolders/{seg(parent)}/childFolders" if parent else f"{ctx.me}/mailFolders"
    return list_result(ctx, path, v)


@action("Create Mail Folder", "Create a new mail folder.",
        folder_id_input(False, "Create the folder under this parent folder; omit for a root-level folder.",
                        "Parent Folder ID", "parent_folder_id"),
        Input("display_name", "string", "Display name", required=True, help="Name of the new folder."),
        area="mail")
def create_folder(ctx: ActionContext, v: dict[str, Any]) -> Any:
    parent = v.get("parent_folder_id")
    path = f"{ctx.me}/mailFolders/{seg(parent)}/childFolders" if parent else f"{ctx.me}/mailFolders"
    return ctx.client.post(path, json={"displayName": v["display_name"]})


@action("Delete Mail Folder", "Delete the specified mail folder.",
        folder_id_input(True, "The folder to delete."), area="mail")
def delete_folder(ctx: ActionContext, v: dict[str, Any]) -> Any:
    ctx.client.delete(f"{ctx.me}/mailFolders/{seg(v['folder_id'])}")
    return done(deleted=v["folder_id"])


@action("List Mail Messages", "List mail messages in a user's mailbox (a folder, a search or a filter).",
        folder_id_input(False, "The folder to list messages of; omit to list all messages."),
        Input("search", "string", "Search", help="A search query ($search); cannot be used with filter."),
        Input("filter", "string", "Filter", help="An OData filter ($filter); cannot be used with search."),
        *paging_inputs(), area="mail")
def list_messages(ctx: ActionContext, v: dict[str, Any]) -> Any:
    if v.get("search") and v.get("filter"):
        raise InputError("search", "search and filter cannot be combined: give one of them")
    params: dict[str, Any] = {}
    if v.get("search"):
        term = v["search"].strip()
        params["$search"] = term if term.startswith('"') else f'"{term}"'
    if v.get("filter"):
        params["$filter"] = v["filter"]
    folder = v.get("folder_id")
    path = f"{ctx.me}/mailFolders/{seg(folder)}/messages" if folder else f"{ctx.me}/messages"
    return list_result(ctx, path, v, params)


def parse_mime(raw: bytes) -> dict[str, Any]:
    """Headers, text and HTML bodies and attachment names of a MIME message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out: dict[str, Any] = {"headers": {k: str(val) for k, val in msg.items()}, "text": None, "html": None,
                           "attachments": []}
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            out["attachments"].append({"name": filename, "contentType": part.get_content_type(),
                                       "size": len(part.get_payload(decode=True) or b"")})
        elif part.get_content_type() == "text/plain" and out["text"] is None:
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html" and out["html"] is None:
            out["html"] = part.get_content()
    return out


@action("Get Mail Message", "Fetch a message by ID; with include_mime, also fetch and parse its raw MIME.",
        message_id_input(),
        Input("include_mime", "boolean", "Include MIME", False,
              help="Also fetch the raw message ($value) and return it parsed under 'mime'."),
        area="mail")
def get_message(ctx: ActionContext, v: dict[str, Any]) -> Any:
    path = f"{ctx.me}/messages/{seg(v['message_id'])}"
    message = ctx.client.get(path)
    if v["include_mime"]:
        raw = ctx.client.request("GET", f"{path}/$value", headers={"Accept": "*/*"})
        message["mime"] = parse_mime(raw.content)
    return message


@action("Delete Message", "Delete a message by ID.", message_id_input(), area="mail")
def delete_message(ctx: ActionContext, v: dict[str, Any]) -> Any:
    ctx.client.delete(f"{ctx.me}/messages/{seg(v['message_id'])}")
    return done(deleted=v["message_id"])


def _recipients(value: list[Any] | None, name: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a.strip()}} for a in strings(value, name) if a.strip()]


def _content_bytes(name: str, filename: str, value: JsonValue) -> str:
    """Base64 content of one attachment: bytes, text, or {"contentBytes"|"base64": "..."}."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        encoded = value.get("contentBytes") or value.get("base64")
        if not isinstance(encoded, str):
            raise InputError(name, f"attachment {filename!r}: give contentBytes (base64)")
        try:
            base64.b64decode(encoded, validate=True)
        except ValueError:
            raise InputError(name, f"attachment {filename!r}: contentBytes is not base64") from None
        return encoded
    if isinstance(value, str):
        return base64.b64encode(value.encode()).decode()
    raise InputError(name, f"attachment {filename!r}: unsupported content {type(value).__name__}")


def attachments(static: dict[str, Any] | None, dynamic: JsonValue) -> list[dict[str, Any]]:
    out = []
    for filename, value in (static or {}).items():
        out.append((filename, _content_bytes("attachments", filename, value)))
    if dynamic is not None:
        if not isinstance(dynamic, list):
            raise InputError("dynamic_attachments", 'expected a list of {"key": file name, "value": data}')
        for item in dynamic:
            if not isinstance(item, dict) or "key" not in item:
                raise InputError("dynamic_attachments", f'expected {{"key","value"}}, got {item!r}')
            out.append((str(item["key"]), _content_bytes("dynamic_attachments", str(item["key"]), item.get("value"))))
    return [{"@odata.type": "#microsoft.graph.fileAttachment", "name": name, "contentBytes": content}
            for name, content in out]


@action("Send Message", "Send a new message.",
        Input("to", "list", "To", required=True, help="Addresses, comma-separated or a list."),
        Input("cc", "list", "CC", help="Addresses, comma-separated or a list."),
        Input("bcc", "list", "BCC", help="Addresses, comma-separated or a list."),
        Input("subject", "string", "Subject"),
        Input("message_body", "string", "Message Body", help="Plain text or HTML body.", aliases=("body",)),
        Input("body_content_type", "string", "Body Content Type", "html", choices=("html", "text")),
        Input("attachments", "object", "Attachments",
              help="File name -> content: text, or {\"contentBytes\": base64} (Python: bytes)."),
        Input("dynamic_attachments", "json", "Dynamic Attachments",
              help='A list of {"key": file name, "value": content} (content as in Attachments).'),
        Input("save_to_sent_items", "boolean", "Save To Sent Items", True),
        area="mail")
def send_message(ctx: ActionContext, v: dict[str, Any]) -> Any:
    message: dict[str, Any] = {
        "subject": v.get("subject") or "",
        "body": {"contentType": "HTML" if v["body_content_type"] == "html" else "Text",
                 "content": v.get("message_body") or ""},
        "toRecipients": _recipients(v["to"], "to"),
    }
    if v.get("cc"):
        message["ccRecipients"] = _recipients(v["cc"], "cc")
    if v.get("bcc"):
        message["bccRecipients"] = _recipients(v["bcc"], "bcc")
    files = attachments(v.get("attachments"), v.get("dynamic_attachments"))
    if files:
        message["attachments"] = files
    ctx.client.post(f"{ctx.me}/sendMail", json={"message": message, "saveToSentItems": v["save_to_sent_items"]})
    return done(sent=True, to=v["to"], attachments=[f["name"] for f in files])
