"""Host-side tools: deploying the firmware to a board, a virtual board for tests.

    python -m host_tools deploy --port PORT --board BOARD [--config FILE]
    python -m host_tools virtual-board
"""
