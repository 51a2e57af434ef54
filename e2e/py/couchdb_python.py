"""couchdb-python (the `CouchDB` package) against Settee: documents,
put_attachment/get_attachment/delete_attachment and the continuous
changes feed. Usage: python3 couchdb_python.py SERVER_URL"""

import os
import sys
import threading
import time

import couchdb

server = couchdb.Server(sys.argv[1])
db = server.create("py-client")

doc = {"_id": "report", "title": "quarterly"}
db.save(doc)
blob = os.urandom(100_000)
db.put_attachment(doc, blob, filename="data.bin", content_type="application/octet-stream")
db.put_attachment(doc, "plain words " * 500, filename="notes.txt", content_type="text/plain")
assert db.get_attachment("report", "data.bin").read() == blob
assert db.get_attachment(doc, "notes.txt").read() == ("plain words " * 500).encode()
assert db.get_attachment("report", "missing.txt") is None
fresh = db["report"]
assert sorted(fresh["_attachments"]) == ["data.bin", "notes.txt"]
assert fresh["_attachments"]["data.bin"]["length"] == len(blob)
db.delete_attachment(fresh, "data.bin")
assert sorted(db["report"]["_attachments"]) == ["notes.txt"]
print("couchdb-python: attachments ok")

# The continuous feed: a writer thread adds documents while we listen.
def writer():
    time.sleep(0.3)
    for i in range(3):
        db.save({"_id": f"late-{i}"})

threading.Thread(target=writer).start()
seen = []
since = db.changes()["last_seq"]
for change in db.changes(feed="continuous", since=since, heartbeat=200, timeout=5000):
    if "id" in change:
        seen.append(change["id"])
    if len(seen) == 3:
        break
assert seen == ["late-0", "late-1", "late-2"], seen
print("couchdb-python: continuous changes ok")

# Purge: the document is gone for good, attachments and all.
gone = db["late-0"]
purged = db.purge([gone])
assert purged["purged"] == {"late-0": [gone["_rev"]]}, purged
assert "late-0" not in db
assert "late-0" not in [c["id"] for c in db.changes()["results"]]
assert db.info()["purge_seq"].startswith("1-"), db.info()["purge_seq"]
print("couchdb-python: purge ok")
