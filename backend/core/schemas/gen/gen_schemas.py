#!/usr/bin/env python3
"""Regenerates backend/core/schemas/*.json from the shared fixtures.

Run from the repository root: python3 backend/core/schemas/gen/gen_schemas.py
The outputs are committed; the engine embeds them with include_str!.

Where the fixtures are silent (maximum lengths, "required" beyond keys), values come
from CURATED below: D365 extended data type sizes for the properties the default
templates touch (CustAccount 20, ItemId 20, CustRef/PurchOrderFormNum 60, Name 100,
Email 255, Street 250, City 60, ZipCode 10, CurrencyCode 3, ...). Change them here.
"""
import json, re, glob, os, sys

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(ROOT)
FIX = os.environ.get("SYNCLINE_FIXTURES", "/work/shared/fixtures")

EDM = {"Edm.String": "string", "Edm.Guid": "string", "Edm.Decimal": "decimal", "Edm.Double": "decimal",
       "Edm.Int32": "integer", "Edm.Int64": "integer", "Edm.DateTimeOffset": "datetime",
       "Edm.Date": "date", "Edm.Boolean": "boolean"}

# (entity, property) -> (max_length, required)
CURATED = {
    "SalesOrderHeadersV2": {"CustomersOrderReference": (60, False), "OrderingCustomerAccountNumber": (20, True),
        "InvoiceCustomerAccountNumber": (20, False), "CurrencyCode": (3, True), "SalesOrderName": (100, False),
        "DeliveryAddressName": (100, False), "DeliveryAddressStreet": (250, False), "DeliveryAddressStreetNumber": (20, False),
        "DeliveryAddressCity": (60, False), "DeliveryAddressZipCode": (10, False), "DeliveryAddressStateId": (10, False),
        "DeliveryAddressCountryRegionId": (10, False), "DeliveryAddressCountryRegionISOCode": (2, False),
        "Email": (255, False), "CustomerRequisitionNumber": (20, False), "LanguageId": (7, False),
        "CustomerPaymentMethodName": (10, False), "DeliveryModeCode": (10, False), "SalesOrderNumber": (20, False),
        "InvoiceAddressStreet": (250, False), "InvoiceAddressCity": (60, False), "InvoiceAddressZipCode": (10, False),
        "InvoiceAddressCountryRegionId": (10, False), "InvoiceAddressStateId": (10, False), "dataAreaId": (4, True),
        "SalesOrderOriginCode": (10, False), "PaymentTermsName": (10, False)},
    "SalesOrderLines": {"SalesOrderNumber": (20, False), "ItemNumber": (20, True), "LineDescription": (1000, False),
        "SalesTaxItemGroupCode": (10, False), "SalesTaxGroupCode": (10, False), "CustomersLineNumber": (20, False),
        "SalesUnitSymbol": (10, False), "CurrencyCode": (3, False), "ExternalItemNumber": (50, False),
        "ShippingWarehouseId": (10, False), "ShippingSiteId": (10, False), "dataAreaId": (4, True),
        "OrderedSalesQuantity": (None, True)},
    "CustomersV3": {"CustomerAccount": (20, False), "PersonFirstName": (25, False), "PersonLastName": (25, False),
        "OrganizationName": (100, False), "NameAlias": (20, False), "PrimaryContactEmail": (255, False), "PrimaryContactPhone": (255, False),
        "CustomerGroupId": (10, True), "SalesCurrencyCode": (3, True), "AddressStreet": (250, False),
        "AddressCity": (60, False), "AddressZipCode": (10, False), "AddressState": (10, False),
        "AddressCountryRegionId": (10, False), "AddressCountryRegionISOCode": (2, False), "AddressDescription": (60, False),
        "LanguageId": (7, False), "dataAreaId": (4, True), "PartyType": (None, True)},
    "ReleasedProductsV2": {"ItemNumber": (20, True), "ProductNumber": (20, False), "SearchName": (20, False),
        "ProductName": (60, False), "SalesUnitSymbol": (10, False), "ProductGroupId": (20, False)},
    "WarehousesOnHandV2": {"ItemNumber": (20, True), "InventoryWarehouseId": (10, True), "InventorySiteId": (10, True)},
    "CustomerPaymentJournalLines": {"JournalBatchNumber": (10, False), "AccountDisplayValue": (500, True),
        "CurrencyCode": (3, True), "PaymentReference": (60, False), "TransactionText": (60, False),
        "MarkedInvoice": (20, False), "PaymentMethodName": (10, False), "dataAreaId": (4, True),
        "AccountType": (None, True), "TransactionDate": (None, True)},
    "CustomerPaymentJournalHeaders": {"JournalName": (10, True), "Description": (60, False)},
}
# Properties the server assigns: key parts a client must not be forced to send.
SERVER_ASSIGNED = {"SalesOrderNumber", "InventoryLotId", "CustomerAccount", "JournalBatchNumber", "LineNumber"}


def parse_metadata():
    enums, entities = {}, {}
    for f in sorted(glob.glob(os.path.join(FIX, "d365/metadata/*.xml"))):
        s = open(f, encoding="utf-8").read()
        for m in re.finditer(r'<EnumType Name="(\w+)".*?</EnumType>', s, re.S):
            enums.setdefault(m.group(1), re.findall(r'<Member Name="(\w+)"', m.group(0)))
        for m in re.finditer(r'<EntityType Name="(\w+)">(.*?)</EntityType>', s, re.S):
            body = m.group(2)
            keys = re.findall(r'<PropertyRef Name="(\w+)"', body.split("</Key>")[0]) if "<Key>" in body else []
            props = {}
            for p in re.finditer(r'<Property Name="(\w+)" Type="([\w.]+)"( Nullable="false")?\s*(/>|>(.*?)</Property>)', body, re.S):
                inner = p.group(5) or ""
                props[p.group(1)] = {"edm": p.group(2), "nullable": not p.group(3),
                                     "required": 'IsRequired" Bool="true"' in inner}
            entities[m.group(1)] = {"key": keys, "props": props}
    return enums, entities


def field_type(edm, enums):
    t = edm.rstrip("?")
    if t in EDM:
        return {"type": EDM[t]}
    short = t.split(".")[-1]
    d = {"type": "enum", "enum": short}
    return d


def d365_catalogue():
    enums, meta = parse_metadata()
    entities = {}
    lines = open(os.path.join(FIX, "d365/entities.txt"), encoding="utf-8").read().splitlines()
    for head, body in zip(lines[0::2], lines[1::2]):
        m = re.match(r"=== EntitySet (\w+) KEY \[(.*?)\] fields", head)
        name, keys = m.group(1), re.findall(r"'(\w+)'", m.group(2))
        entities[name] = {"key": keys, "fields": parse_fields(body, keys, name, enums)}
    # The shipment flow reads packing-slip tracking, present only in the trimmed $metadata.
    pst = meta["PackingSlipTrackingInformation"]
    fields = {}
    for pname, p in pst["props"].items():
        f = field_type(p["edm"], enums)
        f["nullable"] = p["nullable"]
        if p["required"]:
            f["required"] = True
        if pname in pst["key"]:
            f["key"] = True
        fields[pname] = f
    entities["PackingSlipTrackingInformation"] = {"key": pst["key"], "fields": fields}
    used = {f.get("enum") for e in entities.values() for f in e["fields"].values()} - {None}
    enum_out = {k: v for k, v in sorted(enums.items()) if k in used}
    return {"schema_version": 1, "system": "d365", "entities": entities, "enums": enum_out}


def parse_fields(body, keys, entity, enums):
    out = {}
    for item in body.strip().split(", "):
        pname, edm = item.split(":", 1)
        f = field_type(edm, enums)
        f["nullable"] = edm.endswith("?")
        cur = CURATED.get(entity, {}).get(pname)
        if cur:
            if cur[0]:
                f["max_length"] = cur[0]
            if cur[1]:
                f["required"] = True
        if pname in keys:
            f["key"] = True
            if pname not in SERVER_ASSIGNED and pname != "dataAreaId":
                f["required"] = True
        out[pname] = f
    return dict(sorted(out.items()))


MONEY_KEYS = {"price", "amount", "total_discount", "subtotal", "total_tax", "compare_at_price", "discounted_price",
              "rate"}


def infer(key, v):
    if isinstance(v, bool):
        return {"type": "boolean"}
    if isinstance(v, int):
        return {"type": "integer"}
    if isinstance(v, float):
        return {"type": "decimal"}
    if isinstance(v, str):
        if key.endswith("_at") or key in ("processed_at",):
            return {"type": "datetime"}
        if re.fullmatch(r"-?\d+\.\d+", v) or key in MONEY_KEYS or key.startswith(("total_", "subtotal_", "current_total", "current_subtotal")):
            return {"type": "decimal"}
        return {"type": "string"}
    if isinstance(v, dict):
        return {"type": "object", "fields": {k: with_null(k, x) for k, x in v.items() if not k.startswith("_")}}
    if isinstance(v, list):
        items = [x for x in v if x is not None]
        if not items:
            return {"type": "array", "items": {"type": "string"}}
        merged = infer(key, items[0])
        for x in items[1:]:
            if isinstance(x, dict) and merged.get("fields") is not None:
                for k2, x2 in x.items():
                    merged["fields"].setdefault(k2, with_null(k2, x2))
        return {"type": "array", "items": merged}
    return null_type(key)


def null_type(key):
    if key.endswith("_at"):
        return {"type": "datetime"}
    if key.endswith("_id") or key == "id":
        return {"type": "integer"}
    if key.endswith("_address") or key in ("origin_address", "receipt", "client_details", "payment_terms", "image",
                                           "category", "return", "destination"):
        return {"type": "object", "fields": {}}
    if key.endswith("_set"):
        return MONEY_SET
    return {"type": "string"}


def with_null(k, v):
    f = infer(k, v)
    if v is None:
        f["nullable"] = True
    return f


MONEY_SET = {"type": "object", "fields": {
    s: {"type": "object", "fields": {"amount": {"type": "decimal"}, "currency_code": {"type": "string", "max_length": 3}}}
    for s in ("shop_money", "presentment_money")}}

# Shopify sends these empty in the fixtures; give their element shapes so paths into them compile.
ARRAY_SHAPES = {
    "tax_lines": {"type": "object", "fields": {"price": {"type": "decimal"}, "rate": {"type": "decimal"},
                  "title": {"type": "string"}, "price_set": MONEY_SET, "channel_liable": {"type": "boolean", "nullable": True}}},
    "discount_allocations": {"type": "object", "fields": {"amount": {"type": "decimal"}, "amount_set": MONEY_SET,
                             "discount_application_index": {"type": "integer"}}},
    "discount_codes": {"type": "object", "fields": {"code": {"type": "string"}, "amount": {"type": "decimal"},
                       "type": {"type": "string"}}},
    "note_attributes": {"type": "object", "fields": {"name": {"type": "string"}, "value": {"type": "string"}}},
    "metafields": {"type": "object", "fields": {"namespace": {"type": "string"}, "key": {"type": "string"},
                   "value": {"type": "string"}, "type": {"type": "string"}}},
    "addresses": None,  # filled with default_address' shape
    "tax_exemptions": {"type": "string"},
    "properties": {"type": "object", "fields": {"name": {"type": "string"}, "value": {"type": "string"}}},
}

# Context the runner adds before mapping (from the links table), so that rules can
# read the D365 keys of already synchronised records.
SYNCLINE_CONTEXT = {"type": "object", "nullable": True, "fields": {
    "customer_account": {"type": "string", "nullable": True, "max_length": 20},
    "sales_order_number": {"type": "string", "nullable": True, "max_length": 20},
    "legal_entity": {"type": "string", "nullable": True, "max_length": 4}}}


def patch_arrays(node, root):
    if node.get("type") == "object":
        for k, f in node.get("fields", {}).items():
            if f.get("type") == "array" and k in ARRAY_SHAPES and f["items"] == {"type": "string"}:
                shape = ARRAY_SHAPES[k]
                if shape is None and "default_address" in node["fields"]:
                    shape = node["fields"]["default_address"]
                if shape is not None:
                    f["items"] = json.loads(json.dumps(shape))
            patch_arrays(f, root)
    elif node.get("type") == "array":
        patch_arrays(node["items"], root)


def shopify_catalogue():
    docs = {}
    wh = os.path.join(FIX, "shopify/webhooks")
    names = {"order": "orders_create", "customer": "customers_create", "product": "products_update",
             "inventory_level": "inventory_levels_update", "fulfillment": "fulfillments_update", "refund": "refunds_create"}
    for doc, stem in names.items():
        f = [p for p in os.listdir(wh) if stem in p][0]
        data = json.load(open(os.path.join(wh, f), encoding="utf-8"))
        node = infer("", data)
        if doc in ("order", "customer", "product"):
            # Not in webhook bodies: the connector adds them (GraphQL) before mapping.
            node["fields"].setdefault("metafields", {"type": "array", "items": {"type": "string"}})
        node["fields"].setdefault("note_attributes", {"type": "array", "items": {"type": "string"}}) if doc == "order" else None
        patch_arrays(node, node)
        node["fields"]["syncline"] = SYNCLINE_CONTEXT
        docs[doc] = node
    # Transactions are their own resource; the refund payload carries the shape.
    docs["transaction"] = docs["refund"]["fields"]["transactions"]["items"]
    docs["transaction"]["fields"]["currency"]["type"] = "string"
    docs["transaction"]["fields"]["syncline"] = SYNCLINE_CONTEXT
    return {"schema_version": 1, "system": "shopify", "documents": docs}


def S(t, **kw):
    d = {"type": t}
    d.update(kw)
    return d


def shopify_targets():
    """Inputs of the Admin GraphQL mutations the reverse flows call."""
    return {"schema_version": 1, "system": "shopify", "documents": {
        "product_set": {"type": "object", "fields": {
            "product": S("object", fields={"title": S("string", max_length=255, required=True), "handle": S("string", max_length=255),
                "descriptionHtml": S("string"), "vendor": S("string", max_length=255), "productType": S("string", max_length=255),
                "status": S("enum", enum="ProductStatus"), "tags": S("array", items=S("string", max_length=255))}),
            "variants": S("array", items=S("object", fields={"sku": S("string", max_length=255, required=True),
                "price": S("decimal"), "compareAtPrice": S("decimal"), "barcode": S("string", max_length=255),
                "taxable": S("boolean"), "optionValue": S("string", max_length=255)})),
        }},
        "inventory_set_quantities": {"type": "object", "fields": {
            "input": S("object", fields={"name": S("string", required=True), "reason": S("string", required=True),
                "referenceDocumentUri": S("string")}),
            "quantities": S("array", items=S("object", fields={"sku": S("string", required=True),
                "locationId": S("string", required=True), "quantity": S("integer", required=True)})),
        }},
        "fulfillment_create": {"type": "object", "fields": {
            "fulfillment": S("object", fields={"orderId": S("string", required=True), "notifyCustomer": S("boolean"),
                "originReference": S("string")}),
            "trackingInfo": S("object", fields={"company": S("string"), "number": S("string"), "url": S("string")}),
            "lineItems": S("array", items=S("object", fields={"sku": S("string"), "quantity": S("integer", required=True)})),
        }},
    }, "enums": {"ProductStatus": ["ACTIVE", "ARCHIVED", "DRAFT"]}}


def dump(obj, name):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    dump(d365_catalogue(), "d365_entities.json")
    dump(shopify_catalogue(), "shopify_documents.json")
    dump(shopify_targets(), "shopify_targets.json")
    print("ok", file=sys.stderr)
