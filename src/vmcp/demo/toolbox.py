"""A demo MCP server with a few everyday tools and prompts.

Run it over stdio with ``python -m vmcp.demo.toolbox``; vmcp's default mount table mounts it as
``toolbox``. It offers:

- tools ``echo``, ``add``, ``word_count`` (structured output with an output schema) and
  ``now_utc``;
- prompts ``summarize`` (arguments ``text``, ``style``) and ``translate`` (arguments ``text``,
  ``language``), with completion of the ``style`` and ``language`` arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import BaseModel, Field

#: The choices offered when completing the ``style`` argument of ``summarize``.
SUMMARY_STYLES: tuple[str, ...] = ("bullet-points", "brief", "detailed", "eli5", "headline")

#: The choices offered when completing the ``language`` argument of ``translate``.
LANGUAGES: tuple[str, ...] = (
    "Dutch",
    "English",
    "French",
    "German",
    "Italian",
    "Japanese",
    "Polish",
    "Portuguese",
    "Spanish",
)

server = MCPServer(
    "vmcp-demo-toolbox",
    version="1.0.0",
    instructions="Everyday helper tools and prompts, shipped with vmcp as a demo.",
)


class TextStats(BaseModel):
    """Counts describing a piece of text."""

    words: int = Field(description="Number of words (runs of non-space characters).")
    characters: int = Field(description="Number of characters, spaces included.")
    lines: int = Field(description="Number of lines.")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged; handy to check that a connection works."""
    return text


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers and return the sum."""
    return a + b


@server.tool()
def word_count(text: str) -> TextStats:
    """Count the words, characters and lines of a text (returned as structured output)."""
    return TextStats(
        words=len(text.split()),
        characters=len(text),
        lines=len(text.splitlines()) if text else 0,
    )


@server.tool()
def now_utc() -> str:
    """Return the current date and time in UTC, in ISO 8601 format."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@server.prompt()
def summarize(text: str, style: str = "brief") -> str:
    """Ask the model to summarize a text in a given style (see completion for the styles)."""
    return f"Summarize the following text. Style: {style}.\n\n{text}"


@server.prompt()
def translate(text: str, language: str) -> str:
    """Ask the model to translate a text into a language (see completion for suggestions)."""
    return (
        f"Translate the following text into {language}. Reply with the translation only.\n\n{text}"
    )


def complete_choice(choices: tuple[str, ...], prefix: str) -> Completion:
    """The choices that start with ``prefix`` (case-insensitive), as a completion result."""
    wanted = prefix.casefold()
    values = [choice for choice in choices if choice.casefold().startswith(wanted)]
    return Completion(values=values[:100], total=len(values), has_more=len(values) > 100)


@server.completion()
async def complete_argument(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext | None,
) -> Completion | None:
    """Complete ``summarize``'s ``style`` and ``translate``'s ``language`` arguments."""
    if isinstance(ref, PromptReference):
        if ref.name == "summarize" and argument.name == "style":
            return complete_choice(SUMMARY_STYLES, argument.value)
        if ref.name == "translate" and argument.name == "language":
            return complete_choice(LANGUAGES, argument.value)
    return None


def main() -> None:
    """Serve the toolbox over stdio until stdin closes."""
    server.run("stdio")


if __name__ == "__main__":
    main()
