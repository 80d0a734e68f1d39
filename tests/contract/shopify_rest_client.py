"""The official ShopifyAPI Python package against the Shopify emulator.

Usage: shopify_rest_client.py '<ShopifyInfo JSON>'

Reads every order over REST through the library's pagination (Link header
with page_info), one order by id, its transactions, and the shop; parses
the call-limit header with shopify.Limits. Prints a JSON summary on stdout.
"""

import json
import sys

import shopify


def main():
    info = json.loads(sys.argv[1])
    session = shopify.Session(info["shop_domain"], info["api_version"], info["access_token"])
    shopify.ShopifyResource.activate_session(session)
    # The session targets https://{shop}.myshopify.com; the emulator serves
    # the same paths under its base URL.
    shopify.ShopifyResource.site = "%s/admin/api/%s" % (info["url"], info["api_version"])

    shop = shopify.Shop.current()
    assert shop.myshopify_domain == info["shop_domain"], shop.myshopify_domain

    ids = []
    pages = 0
    page = shopify.Order.find(limit=2, status="any")
    while True:
        pages += 1
        for order in page:
            assert isinstance(order.id, int) and order.id > 2**53, order.id
            assert isinstance(order.total_price, str), order.total_price
            assert isinstance(order.line_items[0].price, str)
            ids.append(order.id)
        if not page.has_next_page():
            break
        page = page.next_page()

    first = shopify.Order.find(ids[0])
    assert first.id == ids[0]
    transactions = shopify.Transaction.find(order_id=ids[0])
    assert transactions and transactions[0].kind == "sale"

    used = shopify.Limits.credit_used()
    limit = shopify.Limits.credit_limit()
    print(json.dumps({
        "order_ids": [str(i) for i in ids],
        "pages": pages,
        "credit_used": used,
        "credit_limit": limit,
        "credit_left": shopify.Limits.credit_left(),
        "first_total_price": first.total_price,
        "transaction_amount": transactions[0].amount,
    }))


if __name__ == "__main__":
    main()
