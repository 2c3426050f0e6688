"""A demo MCP server keeping notes in memory and exposing them as resources.

Run it over stdio with ``python -m vmcp.demo.notes``; vmcp's default mount table mounts it as
``notes``. It offers:

- one resource per note, ``note://<name>`` (listed by ``resources/list``), and the template
  ``note://{name}`` to read any note by name;
- tools ``add_note`` (create or replace) and ``delete_note``; each change sends
  ``notifications/resources/list_changed`` when the set of notes changes, and
  ``notifications/resources/updated`` for a note a client subscribed to;
- ``resources/subscribe`` and ``resources/unsubscribe``.

Notes live only as long as the process. It starts with a ``welcome`` note.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    EmptyResult,
    Resource,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

#: JSON-RPC error code for an unknown resource (MCP 2025-11-25).
RESOURCE_NOT_FOUND = -32002

#: What a note name may look like; names are used verbatim in ``note://`` URIs.
NOTE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

WELCOME = (
    "# Welcome to vmcp\n\n"
    "This note is served by the `notes` demo server. Add your own with the `add_note` tool;\n"
    "each note is a resource at `note://<name>`.\n"
)


def note_uri(name: str) -> str:
    """The resource URI of the note called ``name``."""
    return f"note://{name}"


class NoteBook:
    """The notes of one server process, and the note URIs the client subscribed to."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {"welcome": WELCOME}
        self.subscribed: set[str] = set()

    def check_name(self, name: str) -> str:
        """Return ``name`` if it is a valid note name, else raise ``ValueError``."""
        if not NOTE_NAME_RE.fullmatch(name):
            raise ValueError("a note name is 1-64 characters from A-Z a-z 0-9 . _ -")
        return name


class NotesServer(MCPServer):
    """An ``MCPServer`` whose resource list is the current set of notes."""

    def __init__(self, notebook: NoteBook, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.notebook = notebook

    async def list_resources(self) -> list[Resource]:
        """List one ``note://<name>`` resource per note, sorted by name."""
        return [
            Resource(
                uri=note_uri(name),
                name=name,
                title=f"Note {name}",
                mime_type="text/markdown",
                size=len(text.encode()),
            )
            for name, text in sorted(self.notebook.notes.items())
        ]


notebook = NoteBook()
server = NotesServer(
    notebook,
    name="vmcp-demo-notes",
    version="1.0.0",
    instructions="Notes kept in memory: read them as note:// resources, change them with tools.",
)


@server.resource("note://{name}", name="note", title="A note by name", mime_type="text/markdown")
def read_note(name: str) -> str:
    """Return the text of the note called ``name``."""
    try:
        return notebook.notes[name]
    except KeyError:
        raise MCPError(
            code=RESOURCE_NOT_FOUND, message=f"No note named {name!r}", data={"uri": note_uri(name)}
        ) from None


@server.tool()
async def add_note(name: str, text: str, ctx: Context) -> str:
    """Create the note ``name`` with ``text``, or replace its text if it exists."""
    notebook.check_name(name)
    created = name not in notebook.notes
    notebook.notes[name] = text
    if created:
        await ctx.session.send_resource_list_changed()
    if note_uri(name) in notebook.subscribed:
        await ctx.session.send_resource_updated(note_uri(name))
    return f"{'created' if created else 'updated'} {note_uri(name)}"


@server.tool()
async def delete_note(name: str, ctx: Context) -> str:
    """Delete the note ``name``; deleting a note that does not exist is an error."""
    if name not in notebook.notes:
        raise ValueError(f"no note named {name!r}")
    del notebook.notes[name]
    await ctx.session.send_resource_list_changed()
    if note_uri(name) in notebook.subscribed:
        await ctx.session.send_resource_updated(note_uri(name))
    return f"deleted {note_uri(name)}"


async def subscribe(ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
    """Remember that the client wants ``resources/updated`` for ``params.uri``."""
    notebook.subscribed.add(str(params.uri))
    return EmptyResult()


async def unsubscribe(
    ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams
) -> EmptyResult:
    """Stop sending ``resources/updated`` for ``params.uri``."""
    notebook.subscribed.discard(str(params.uri))
    return EmptyResult()


# MCPServer has no decorator for subscriptions; they are registered on its low-level server.
_lowlevel = server._lowlevel_server
_lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
_lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)


async def serve_stdio() -> None:
    """Serve over stdio, advertising ``resources.listChanged`` and ``resources.subscribe``."""
    options = _lowlevel.create_initialization_options(NotificationOptions(resources_changed=True))
    async with stdio_server() as (read_stream, write_stream):
        await _lowlevel.run(read_stream, write_stream, options)


def main() -> None:
    """Serve the notes over stdio until stdin closes."""
    anyio.run(serve_stdio)


if __name__ == "__main__":
    main()
