"""The running gateway's local control endpoint, and the tools around it.

A gateway started with ``vmcp start`` owns ``$VMCP_HOME/run/``: an instance lock, the pid
file ``vmcp.pid`` and the Unix socket ``control.sock`` (owner-only). ``vmcp status``,
``stop``, ``list``, ``info``, ``mount``, ``unmount``, ``reload``, ``tools`` and ``call`` talk
to it with one JSON request per line and get one JSON response per line
(:mod:`vmcp.control.protocol`).
"""
