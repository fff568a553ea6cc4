"""The parts of `nocpipe serve` (stages/serve.py puts them together; docs/serve.md):

batcher.py   one queue in front of the model, one thread that calls it
body.py      a request body read within its bounds, and checked into text and a Decoding
hosts.py     the Host names the server answers to (DNS rebinding stays out)
server.py    uvicorn with a read timeout per request and a stop that empties the queue first
threads.py   a blocking call (a file read) run off the event loop
chat.html    the chat page: one file, nothing from other hosts
"""
