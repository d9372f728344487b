//! `match[]` selectors and the `/api/v1/parse_query` tree, on top of the PromQL parser.

use koban_model::Matcher;
use koban_promql::ast::{AtModifier, Card, Expr, ValueType, VectorSelector};
use serde_json::{json, Value};

/// Parses a series selector such as `up{job="x"}` (no offset, `@`, or range).
pub fn parse_metric_selector(s: &str) -> Result<Vec<Matcher>, String> {
    match koban_promql::parse(s) {
        Ok(Expr::VectorSelector(vs)) if vs.offset == 0 && vs.at.is_none() => Ok(vs.matchers),
        Ok(_) => Err(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        )),
        Err(e) => Err(format!("invalid parameter \"match[]\": {e}")),
    }
}

fn value_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
        ValueType::String => "string",
    }
}

fn at_fields(at: &Option<AtModifier>) -> (Value, Value) {
    match at {
        None => (Value::Null, Value::Null),
        Some(AtModifier::Timestamp(t)) => (json!(t), Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
    }
}

fn selector_json(vs: &VectorSelector) -> Value {
    let (ts, soe) = at_fields(&vs.at);
    let matchers: Vec<Value> = vs
        .matchers
        .iter()
        .map(|m| json!({"type": m.kind.to_string(), "name": m.name, "value": m.value}))
        .collect();
    json!({
        "type": "vectorSelector",
        "name": vs.name.clone().unwrap_or_default(),
        "matchers": matchers,
        "offset": vs.offset,
        "timestamp": ts,
        "startOrEnd": soe,
    })
}

/// The syntax tree as Prometheus's `/api/v1/parse_query` returns it.
pub fn ast_json(e: &Expr) -> Value {
    match e {
        Expr::Number { val, .. } => {
            json!({"type": "numberLiteral", "val": crate::json::format_value(*val)})
        }
        Expr::String { val, .. } => json!({"type": "stringLiteral", "val": val}),
        Expr::VectorSelector(vs) => selector_json(vs),
        Expr::MatrixSelector { vs, range, .. } => {
            json!({"type": "matrixSelector", "range": range, "vectorSelector": selector_json(vs)})
        }
        Expr::Subquery {
            expr,
            range,
            step,
            offset,
            at,
            ..
        } => {
            let (ts, soe) = at_fields(at);
            json!({"type": "subquery", "expr": ast_json(expr), "range": range, "offset": offset, "step": step,
                   "timestamp": ts, "startOrEnd": soe})
        }
        Expr::Paren { expr, .. } => json!({"type": "parenExpr", "expr": ast_json(expr)}),
        Expr::Unary { neg, expr, .. } => {
            json!({"type": "unaryExpr", "op": if *neg { "-" } else { "+" }, "expr": ast_json(expr)})
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
            ..
        } => {
            let matching = match matching {
                None => Value::Null,
                Some(m) => json!({
                    "card": match m.card {
                        Card::OneToOne => "one-to-one",
                        Card::ManyToOne => "many-to-one",
                        Card::OneToMany => "one-to-many",
                        Card::ManyToMany => "many-to-many",
                    },
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
                }),
            };
            json!({"type": "binaryExpr", "op": op.as_str(), "lhs": ast_json(lhs), "rhs": ast_json(rhs),
                   "matching": matching, "bool": return_bool})
        }
        Expr::Call { func, args, .. } => json!({
            "type": "call",
            "func": {
                "name": func.name,
                "argTypes": func.arg_types.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                "variadic": func.variadic,
                "returnType": value_type(func.ret),
            },
            "args": args.iter().map(ast_json).collect::<Vec<_>>(),
        }),
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
            ..
        } => json!({
            "type": "aggregation",
            "op": op.as_str(),
            "expr": ast_json(expr),
            "param": param.as_ref().map(|p| ast_json(p)).unwrap_or(Value::Null),
            "grouping": grouping,
            "without": without,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let m = parse_metric_selector(r#"up{job="x"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_metric_selector("rate(up[5m])").is_err());
        assert!(parse_metric_selector("up{").is_err());
    }

    #[test]
    fn parse_tree() {
        let e = koban_promql::parse("sum by (job) (rate(up[5m]))").unwrap();
        let v = ast_json(&e);
        assert_eq!(v["type"], "aggregation");
        assert_eq!(v["grouping"][0], "job");
        assert_eq!(v["expr"]["type"], "call");
        assert_eq!(v["expr"]["args"][0]["range"], 300000);
    }
}
