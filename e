/dev/fd/3: line 110: --simulate: command not found
