"""Where a load level's requests run: tickets and the executor protocol (tickets.py), worker processes on this
machine (local.py, with lifeline.py and capacity.py), and Ray actors across a cluster (ray_actors.py over
ray_cluster.py). Executors decide only when a request starts; the load engine (load/) sits above them."""
