"""couchdb-python (the `CouchDB` package) against a partitioned Settee
database: creating it, saving partitioned documents, partition views and
Mango queries through the library's own calls.
Usage: python3 couchdb_python_partitions.py SERVER_URL"""

import sys

import couchdb

server = couchdb.Server(sys.argv[1])
# couchdb-python's create() takes no options; its resource layer does.
status, _, _ = server.resource.put_json("py-parts", partitioned="true")
assert status == 201, status
db = server["py-parts"]
assert db.info()["props"] == {"partitioned": True}

for team in ("red", "blue"):
    for i in range(30):
        db.save({"_id": f"{team}:player{i:02d}", "team": team, "score": i * 3})
try:
    db.save({"_id": "loose"})
    raise AssertionError("an id without a partition was accepted")
except couchdb.ServerError as e:
    assert e.args[0][0] == 400, e.args
print("couchdb-python: 60 partitioned documents saved")

db.save({
    "_id": "_design/scores",
    "views": {"by_score": {"map": "function(doc) { emit(doc.score, doc.score); }",
                           "reduce": "_stats"}},
})
rows = db.view("_partition/red/_design/scores/_view/by_score", reduce=False, startkey=30, endkey=45)
assert [r.id for r in rows] == [f"red:player{i:02d}" for i in range(10, 16)], [r.id for r in rows]
assert all(r.value == r.key for r in rows)
stats = list(db.view("_partition/blue/_design/scores/_view/by_score"))[0].value
assert stats["count"] == 30 and stats["sum"] == sum(i * 3 for i in range(30)), stats
try:
    list(db.view("scores/by_score"))
    raise AssertionError("a partitioned view answered a global query")
except couchdb.ServerError as e:
    assert e.args[0][0] == 400, e.args
print("couchdb-python: partition views ok")

found = list(db.find({"selector": {"score": {"$gt": 80}}, "partition": "blue"}))
assert sorted(d["_id"] for d in found) == ["blue:player27", "blue:player28", "blue:player29"], found
status, _, body = db.resource("_partition", "red", "_find").post_json(
    body={"selector": {"score": {"$lt": 6}}})
assert status == 200 and sorted(d["_id"] for d in body["docs"]) == ["red:player00", "red:player01"], body
info = db.resource("_partition", "red").get_json()[2]
assert info["doc_count"] == 30, info
print("couchdb-python: partition _find and info ok")
