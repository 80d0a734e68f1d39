//! Custom scalars and enums with Shopify's names.

use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use rust_decimal::Decimal;

/// `DateTime`: ISO 8601 in UTC with a `Z`, as Shopify writes it.
#[derive(Debug, Clone)]
pub struct DateTime(pub String);

impl DateTime {
    /// Normalises any RFC 3339 timestamp to UTC; leaves unparsable text as is.
    pub fn from_wire(s: &str) -> Self {
        match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => DateTime(
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            Err(_) => DateTime(s.to_owned()),
        }
    }
}

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(DateTime(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `URL`.
#[derive(Debug, Clone)]
pub struct Url(pub String);

#[Scalar(name = "URL")]
impl ScalarType for Url {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => match url::Url::parse(&s) {
                Ok(_) => Ok(Url(s)),
                Err(_) => Err(InputValueError::custom(format!("Invalid URL '{s}'"))),
            },
            other => Err(InputValueError::expected_type(other)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `UnsignedInt64`: serialised as a string so it survives JavaScript.
#[derive(Debug, Clone, Copy)]
pub struct UnsignedInt64(pub u64);

#[Scalar(name = "UnsignedInt64")]
impl ScalarType for UnsignedInt64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(UnsignedInt64)
                .map_err(|_| InputValueError::expected_type(value.clone())),
            Value::Number(n) => n
                .as_u64()
                .map(UnsignedInt64)
                .ok_or_else(|| InputValueError::expected_type(value.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// `Money`: a decimal amount as a string.
#[derive(Debug, Clone, Copy)]
pub struct Money(pub Decimal);

#[Scalar(name = "Money")]
impl ScalarType for Money {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(Money)
                .map_err(|_| InputValueError::custom(format!("invalid money amount '{s}'"))),
            Value::Number(n) => n
                .to_string()
                .parse()
                .map(Money)
                .map_err(|_| InputValueError::expected_type(value.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// `Decimal`, as Shopify writes it: trailing zeros dropped but at least one
/// decimal place (`"10.0"`, `"19.99"`), like Ruby's `BigDecimal#to_s("F")`.
#[derive(Debug, Clone, Copy)]
pub struct ShopifyDecimal(pub Decimal);

impl ShopifyDecimal {
    /// The wire text.
    pub fn text(&self) -> String {
        let n = self.0.normalize();
        if n.scale() == 0 {
            format!("{n}.0")
        } else {
            n.to_string()
        }
    }
}

#[Scalar(name = "Decimal")]
impl ScalarType for ShopifyDecimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(ShopifyDecimal)
                .map_err(|_| InputValueError::custom(format!("invalid decimal '{s}'"))),
            Value::Number(n) => n
                .to_string()
                .parse()
                .map(ShopifyDecimal)
                .map_err(|_| InputValueError::expected_type(value.clone())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.text())
    }
}

/// `HTML`.
#[derive(Debug, Clone)]
pub struct Html(pub String);

#[Scalar(name = "HTML")]
impl ScalarType for Html {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Html(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `JSON`.
#[derive(Debug, Clone)]
pub struct Json(pub serde_json::Value);

#[Scalar(name = "JSON")]
impl ScalarType for Json {
    fn parse(value: Value) -> InputValueResult<Self> {
        value
            .into_json()
            .map(Json)
            .map_err(|e| InputValueError::custom(e.to_string()))
    }
    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
        #[allow(clippy::upper_case_acronyms, missing_docs)]
        #[graphql(rename_items = "UPPERCASE")]
        pub enum $name { $($v),* }

        impl $name {
            /// The variant for a code, if the emulator knows it.
            pub fn from_code(code: &str) -> Option<Self> {
                match code.to_ascii_uppercase().as_str() {
                    $(stringify!($v) => Some(Self::$v),)*
                    _ => None,
                }
            }
        }
    };
}

code_enum!(
    /// ISO 4217 currencies the emulator uses (a subset of Shopify's enum).
    CurrencyCode {
        USD, EUR, GBP, CAD, AUD, JPY, CHF, SEK, NOK, DKK, PLN, CZK, MXN, BRL, INR, CNY, HKD,
        SGD, NZD, ZAR, KRW, TRY, AED, ILS, XXX
    }
);

code_enum!(
    /// ISO 3166 countries the emulator uses (a subset of Shopify's enum).
    CountryCode {
        US, CA, GB, DE, FR, ES, IT, NL, BE, SE, NO, DK, FI, PL, CZ, CH, AT, IE, PT, JP, CN, HK,
        KR, IN, AU, NZ, BR, MX, ZA, AE, IL, TR, SG, GR, IS, UA
    }
);

impl CurrencyCode {
    /// The variant for a code, `XXX` when unknown.
    pub fn code(code: &str) -> Self {
        Self::from_code(code).unwrap_or(CurrencyCode::XXX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_like_shopify() {
        let t = |s: &str| ShopifyDecimal(s.parse().unwrap_or_default()).text();
        assert_eq!(t("10.00"), "10.0");
        assert_eq!(t("0.00"), "0.0");
        assert_eq!(t("19.990"), "19.99");
        assert_eq!(t("404.95"), "404.95");
    }
}
