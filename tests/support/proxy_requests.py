"""Python requests as the app behind HTTPS_PROXY: GETs each URL in argv on one Session and prints the answers as JSON."""
import json
import sys

import requests

session = requests.Session()
answers = []
for url in sys.argv[1:]:
    r = session.get(url, timeout=20)
    answers.append({"status": r.status_code, "body": r.text})
print(json.dumps(answers))
