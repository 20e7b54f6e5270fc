"""The load engine: requests in flight together, per provider and model, above the executors. What a level is, what
it did and when a sweep stops (levels.py); the closed loop, where each slot sends its next request as soon as its
last one ended (closed.py). An open loop (requests at their scheduled times) lands beside it as a module of its own."""
