"""The seed guide's product search with Python `requests` against Settee:
a `$or` of categories with a `$regex` on the name, sorted by an indexed
field. Usage: python3 product_search.py http://admin:pw@127.0.0.1:PORT"""
import sys

import requests

base = sys.argv[1].rstrip("/")
db = f"{base}/py-products"
s = requests.Session()
assert s.put(db).status_code == 201

products = [
    {"_id": f"sku-{i:03}", "type": "product", "category": cat, "name": name, "price": price}
    for i, (cat, name, price) in enumerate(
        [
            ("kitchen", "Cast Iron Skillet", 45),
            ("kitchen", "Steel Saucepan", 30),
            ("garden", "Steel Rake", 25),
            ("garden", "Hose Reel", 60),
            ("toys", "Steel Drum", 80),
            ("kitchen", "Wooden Spoon", 5),
            ("garden", "Stainless Trowel", 12),
        ]
    )
]
r = s.post(f"{db}/_bulk_docs", json={"docs": products})
assert r.status_code == 201, r.text

query = {
    "selector": {
        "type": "product",
        "$or": [{"category": "kitchen"}, {"category": "garden"}],
        "name": {"$regex": "(?i)^st"},
    },
    "fields": ["_id", "name", "price"],
    "sort": [{"type": "asc"}, {"price": "asc"}],
}
r = s.post(f"{db}/_find", json=query)
assert r.status_code == 400 and r.json()["error"] == "no_usable_index", r.text

r = s.post(f"{db}/_index", json={"index": {"fields": ["type", "price"]}, "name": "type-price"})
assert r.status_code == 200 and r.json()["result"] == "created", r.text

r = s.post(f"{db}/_find", json={**query, "execution_stats": True})
assert r.status_code == 200, r.text
body = r.json()
names = [d["name"] for d in body["docs"]]
assert names == ["Stainless Trowel", "Steel Rake", "Steel Saucepan"], names
assert all(set(d) == {"_id", "name", "price"} for d in body["docs"])
assert "warning" not in body, body
assert body["execution_stats"]["results_returned"] == 3
print("product_search: $or/$regex search ok:", names)
