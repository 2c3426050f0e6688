"""Small demo MCP servers shipped with vmcp.

They are written with the official SDK (``mcp.server.mcpserver.MCPServer``) and speak MCP over
stdio, so the shipped default mount table (``vmcp/defaults/servers.toml``) can run them with
``python -m vmcp.demo.toolbox`` and ``python -m vmcp.demo.notes``. With no configuration at all,
``vmcp start`` mounts both, and a client sees e.g. ``toolbox__echo`` and ``note://welcome``.

- :mod:`vmcp.demo.toolbox`: everyday tools (echo, arithmetic, text statistics, the time),
  two prompts with arguments and completion of a prompt argument.
- :mod:`vmcp.demo.notes`: notes kept in memory, exposed as resources, with tools to add and
  delete them, ``list_changed`` notifications and resource subscriptions.
"""
