"""Mail folder and message actions over HTTP and the CLI, checked against the simulator's mailboxes."""

from __future__ import annotations

import base64

from tests.actions.helpers import hits, mailbox, ok


def test_mail_folder_actions(outlook, call):
    sim, alice = outlook.sim, outlook.alice
    user = {"user_id": alice}
    top = ok(call("create-mail-folder", {**user, "inputs": {"display_name": "Projects"}}))
    assert hits(sim, "POST /v1.0/me/mailFolders") == 1
    child = ok(call("create-mail-folder", {**user, "inputs": {"display_name": "Alpha",
                                                              "parent_folder_id": top["id"]}}))
    assert hits(sim, "POST /v1.0/me/mailFolders/{id}/childFolders") == 1
    assert mailbox(sim, alice).folders[child["id"]].parent_id == top["id"]

    roots = ok(call("list-mail-folders", {**user, "inputs": {"fetch_all": True}}))
    assert "Projects" in {f["displayName"] for f in roots["value"]}
    assert "Alpha" not in {f["displayName"] for f in roots["value"]}
    kids = ok(call("list-mail-folders", {**user, "inputs": {"parent_folder_id": top["id"]}}))
    assert [f["displayName"] for f in kids["value"]] == ["Alpha"]
    assert hits(sim, "GET /v1.0/me/mailFolders/{id}/childFolders") == 1
    page = ok(call("list-mail-folders", {**user, "inputs": {"page_limit": 2}}))
    assert len(page["value"]) == 2 and "@odata.nextLink" in page

    assert ok(call("delete-mail-folder", {**user, "inputs": {"folder_id": child["id"]}}))["ok"]
    assert child["id"] not in mailbox(sim, alice).folders
    assert hits(sim, "DELETE /v1.0/me/mailFolders/{id}") == 1


def test_send_message_with_recipients_body_and_attachments(outlook, call):
    sim, alice, bob = outlook.sim, outlook.alice, outlook.bob
    pdf = b"%PDF-1.4 binary \x00\x01"
    sent = ok(call("send-message", {"user_id": alice, "inputs": {
        "to": outlook.bob_upn, "cc": "carol@example.com,dave@example.com", "bcc": ["eve@example.com"],
        "subject": "Report", "message_body": "<b>Numbers</b>",
        "attachments": {"notes.txt": "plain text"},
        "dynamic_attachments": [{"key": "report.pdf", "value": {"base64": base64.b64encode(pdf).decode()}}],
    }}))
    assert sent == {"ok": True, "sent": True, "to": [outlook.bob_upn], "attachments": ["notes.txt", "report.pdf"]}
    assert hits(sim, "POST /v1.0/me/sendMail") == 1
    received = [m for m in mailbox(sim, bob).messages.values() if m["subject"] == "Report"]
    assert len(received) == 1
    msg = received[0]
    assert msg["body"] == {"contentType": "html", "content": "<b>Numbers</b>"}   # Graph stores the canonical enum
    assert [r["emailAddress"]["address"] for r in msg["ccRecipients"]] == ["carol@example.com", "dave@example.com"]
    assert [r["emailAddress"]["address"] for r in msg["bccRecipients"]] == ["eve@example.com"]
    files = {a["name"]: base64.b64decode(a["contentBytes"]) for a in msg["_attachments"]}
    assert files == {"notes.txt": b"plain text", "report.pdf": pdf}
    # a copy in Alice's Sent Items
    assert any(m["subject"] == "Report" for m in mailbox(sim, alice).messages.values())


def test_send_text_message_via_cli(outlook, cli):
    code, out, err = cli("action", "send-message", "--user", outlook.alice, f"to={outlook.bob_upn}",
                         "subject=Plain", "message_body=hello", "body_content_type=text")
    assert code == 0, err
    assert out["sent"] is True
    msg = next(m for m in mailbox(outlook.sim, outlook.bob).messages.values() if m["subject"] == "Plain")
    assert msg["body"]["contentType"].lower() == "text"


def test_list_get_delete_messages(outlook, call, cli):
    sim, alice, bob = outlook.sim, outlook.alice, outlook.bob
    for subject in ("Invoice 1", "Invoice 2", "Lunch"):
        sim.send_mail(alice, {"subject": subject, "body": {"contentType": "text", "content": f"about {subject}"},
                              "toRecipients": [{"emailAddress": {"address": outlook.bob_upn}}]})
    user = {"user_id": bob}
    inbox = ok(call("list-mail-messages", {**user, "inputs": {"folder_id": "inbox", "fetch_all": True}}))
    assert sorted(m["subject"] for m in inbox["value"]) == ["Invoice 1", "Invoice 2", "Lunch"]
    assert hits(sim, "GET /v1.0/me/mailFolders/{id}/messages") >= 1 or hits(
        sim, "GET /v1.0/me/mailFolders/inbox/messages") >= 1

    found = ok(call("list-mail-messages", {**user, "inputs": {"search": "invoice"}}))
    assert sorted(m["subject"] for m in found["value"]) == ["Invoice 1", "Invoice 2"]
    filtered = ok(call("list-mail-messages", {**user, "inputs": {"filter": "subject eq 'Lunch'"}}))
    assert [m["subject"] for m in filtered["value"]] == ["Lunch"]
    one = ok(call("list-mail-messages", {**user, "inputs": {"page_limit": 1}}))
    assert len(one["value"]) == 1 and "@odata.nextLink" in one

    status, body, _ = call("list-mail-messages", {**user, "inputs": {"search": "a", "filter": "isRead eq false"}})
    assert status == 400 and body["error"]["input"] == "search" and "cannot be combined" in body["error"]["message"]

    lunch = filtered["value"][0]
    code, got, err = cli("action", "get-mail-message", "--user", bob, f"message_id={lunch['id']}",
                         "include_mime=true")
    assert code == 0, err
    assert got["subject"] == "Lunch" and got["mime"]["headers"]["Subject"] == "Lunch"
    assert "about Lunch" in got["mime"]["text"]
    assert hits(sim, "GET /v1.0/me/messages/{id}") == 1 and hits(sim, "GET /v1.0/me/messages/{id}/$value") == 1

    assert ok(call("delete-message", {**user, "inputs": {"message_id": lunch["id"]}}))["deleted"] == lunch["id"]
    assert lunch["id"] not in mailbox(sim, bob).messages
    assert hits(sim, "DELETE /v1.0/me/messages/{id}") == 1
