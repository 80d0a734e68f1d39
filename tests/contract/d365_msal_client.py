"""Real-client contract for the D365 emulator.

Python msal (ConfidentialClientApplication, client credentials) obtains a
token from the emulator's Entra endpoint over TLS, then `requests` reads and
writes OData with it. Started by backend/sim/d365/tests/contract_msal.rs with:
  D365_SIM_INFO  the emulator's info JSON (url, token_url, tenant_id, ...)
  D365_SIM_CA    PEM of the CA that signed the emulator's certificate
Exits non-zero with a message on the first failed check.
"""
import json
import os
import sys

import msal
import requests

info = json.loads(os.environ["D365_SIM_INFO"])
ca = os.environ["D365_SIM_CA"]
authority = info["token_url"].split("/oauth2/")[0]
scope = [info["url"] + "/.default"]


def check(cond, what, detail=""):
    if not cond:
        print(f"FAILED: {what} {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def app(secret):
    # Not a public cloud authority: skip instance discovery and validation,
    # msal then reads {authority}/v2.0/.well-known/openid-configuration.
    return msal.ConfidentialClientApplication(
        info["client_id"],
        client_credential=secret,
        authority=authority,
        validate_authority=False,
        instance_discovery=False,
        verify=ca,
    )


client = app(info["client_secret"])
result = client.acquire_token_for_client(scopes=scope)
check("access_token" in result, "msal obtained a token", result)
check(result.get("token_type") == "Bearer", "token type Bearer", result)
check(int(result.get("expires_in", 0)) > 3000, "expires_in about an hour", result)
again = client.acquire_token_for_client(scopes=scope)
check(again.get("access_token") == result["access_token"], "second call served from msal's cache")

bad = app("not-the-secret").acquire_token_for_client(scopes=scope)
check(bad.get("error") == "invalid_client", "wrong secret refused", bad)
check(7000215 in bad.get("error_codes", []), "AADSTS7000215", bad)

session = requests.Session()
session.verify = ca
session.headers.update(
    {
        "Authorization": "Bearer " + result["access_token"],
        "Accept": "application/json;odata.metadata=minimal",
        "OData-Version": "4.0",
        "OData-MaxVersion": "4.0",
    }
)
base = info["url"] + "/data"
r = session.get(base + "/CustomersV3", params={"$top": "3", "$select": "CustomerAccount,CustomerGroupId,dataAreaId"})
check(r.status_code == 200, "OData read with the msal token", r.text[:300])
check(r.headers.get("OData-Version") == "4.0", "OData-Version header")
rows = r.json()["value"]
check(len(rows) == 3, "three customers")
check(all(c["dataAreaId"] == info["data_area_id"] for c in rows), "default company applied")

r = session.post(
    base + "/SalesOrderHeadersV2",
    json={"OrderingCustomerAccountNumber": rows[0]["CustomerAccount"], "CustomersOrderReference": "#msal-1"},
)
check(r.status_code == 201, "order created", r.text[:300])
number = r.json()["SalesOrderNumber"]
r = session.get(
    base + f"/SalesOrderHeadersV2(dataAreaId='{info['data_area_id']}',SalesOrderNumber='{number}')",
    params={"$select": "CustomersOrderReference"},
)
check(r.status_code == 200 and r.json()["CustomersOrderReference"] == "#msal-1", "order read back", r.text[:300])

r = requests.get(base + "/CustomersV3", verify=ca)
check(r.status_code == 401, "no token, no data")
print("d365 msal contract: all checks ok")
