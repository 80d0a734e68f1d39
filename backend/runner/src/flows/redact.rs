//! Personal data masking for run snapshots: operators need to see the shape of what flowed,
//! not the buyer's name, address, e-mail or phone.

use serde_json::Value;

/// Shopify payload fields that hold personal data wherever they appear.
const PERSONAL_KEYS: &[&str] = &[
    "email",
    "contact_email",
    "phone",
    "first_name",
    "last_name",
    "address1",
    "address2",
    "zip",
    "latitude",
    "longitude",
    "browser_ip",
    "company",
    "client_details",
];

/// Objects whose `name` is a person's name (an order's `name` is its number and stays).
const PERSON_OBJECTS: &[&str] = &[
    "customer",
    "billing_address",
    "shipping_address",
    "default_address",
    "addresses",
];

/// D365 properties that hold personal data.
const PERSONAL_PROPERTIES: &[&str] = &[
    "Email",
    "SalesOrderName",
    "DeliveryAddressName",
    "DeliveryAddressStreet",
    "DeliveryAddressStreetNumber",
    "DeliveryAddressZipCode",
    "InvoiceAddressStreet",
    "InvoiceAddressZipCode",
    "PrimaryContactEmail",
    "PrimaryContactPhone",
    "PersonFirstName",
    "PersonLastName",
    "OrganizationName",
    "AddressStreet",
    "AddressZipCode",
];

const MASK: &str = "[redacted]";

/// Masks personal data in place, for a document nobody needs unmasked any more.
pub fn mask_personal(value: &mut Value) {
    mask(value, false);
}

fn mask(value: &mut Value, person: bool) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                let masked = PERSONAL_KEYS.contains(&key.as_str())
                    || (person && key == "name")
                    || PERSONAL_PROPERTIES.contains(&key.as_str());
                if masked && !inner.is_null() {
                    *inner = Value::String(MASK.to_owned());
                } else {
                    mask(inner, PERSON_OBJECTS.contains(&key.as_str()));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask(item, person)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_buyer_data_and_keeps_business_data() {
        let order = json!({
            "name": "#1001", "email": "bob@example.com", "total_price": "10.00",
            "customer": {"id": 5, "first_name": "Bob", "email": "bob@example.com"},
            "shipping_address": {"name": "Bob Norman", "address1": "1 Main St", "city": "Ottawa"},
            "line_items": [{"name": "Hat", "sku": "H-1", "quantity": 2}],
        });
        let mut out = order;
        mask_personal(&mut out);
        assert_eq!(out["name"], "#1001");
        assert_eq!(out["email"], MASK);
        assert_eq!(out["customer"]["first_name"], MASK);
        assert_eq!(out["customer"]["id"], 5);
        assert_eq!(out["shipping_address"]["name"], MASK);
        assert_eq!(out["shipping_address"]["address1"], MASK);
        assert_eq!(out["shipping_address"]["city"], "Ottawa");
        assert_eq!(out["line_items"][0]["name"], "Hat");
        assert!(!out.to_string().contains("bob@"));
    }

    #[test]
    fn masks_d365_personal_properties() {
        let header = json!({"SalesOrderName": "Bob Norman", "Email": "bob@example.com", "CurrencyCode": "USD"});
        let mut out = header;
        mask_personal(&mut out);
        assert_eq!(out["SalesOrderName"], MASK);
        assert_eq!(out["Email"], MASK);
        assert_eq!(out["CurrencyCode"], "USD");
    }
}
