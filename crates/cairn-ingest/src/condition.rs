//! `if` conditions: a small, safe subset of Painless, evaluated over the document.
//!
//! Supported (see the crate docs for the full list): `ctx.a.b`, `ctx['a']`, `ctx.a?.b`,
//! `params.x`, string/number/boolean/`null` literals, `==` `!=` `<` `<=` `>` `>=`, `&&`
//! `||` `!`, parentheses, `instanceof`, and the methods in [`METHODS`].

use std::borrow::Cow;

use cairn_core::error::EsError;
use serde_json::{Map, Value};

use crate::doc::{java_type, Ctx};

/// Methods the condition language accepts.
pub const METHODS: &[&str] = &[
    "contains",
    "startsWith",
    "endsWith",
    "equals",
    "equalsIgnoreCase",
    "isEmpty",
    "length",
    "size",
    "toLowerCase",
    "toUpperCase",
    "trim",
    "containsKey",
    "get",
];

/// One line describing the subset, used in every compile error.
pub const SUBSET: &str = "cairn supports this subset of Painless: ctx.field / ctx['field'] / ctx.a?.b access, params.x, \
string ('..' or \"..\"), number, true/false/null literals, == != < <= > >=, && || !, parentheses, \
`x instanceof String|Number|Integer|Long|Double|Boolean|Map|List`, and the methods \
contains, startsWith, endsWith, equals, equalsIgnoreCase, isEmpty, length, size, \
toLowerCase, toUpperCase, trim, containsKey, get; an optional leading `return` and trailing `;`";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Value),
    Op(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Value),
    Ctx,
    Params,
    Field(Box<Expr>, String, bool),
    Index(Box<Expr>, Box<Expr>, bool),
    Call(Box<Expr>, String, Vec<Expr>, bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    InstanceOf(Box<Expr>, String),
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    source: String,
    expr: Expr,
    params: Map<String, Value>,
}

fn compile_err(src: &str, detail: &str) -> EsError {
    EsError::new(
        400,
        "script_exception",
        format!("compile error in condition [{src}]: {detail}; {SUBSET}"),
    )
    .with("script", src)
    .with("lang", "painless")
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let q = c;
            let mut s = String::new();
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                let d = chars[i];
                if d == '\\' && i + 1 < chars.len() {
                    let e = chars[i + 1];
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if d == q {
                    closed = true;
                    i += 1;
                    break;
                }
                s.push(d);
                i += 1;
            }
            if !closed {
                return Err("unterminated string literal".into());
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                // `1.foo` is not a number followed by a field: stop at a dot not followed by a digit.
                if chars[i] == '.' && !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            // Java suffixes: 5L, 1.0f, 2d.
            let text: String = chars[start..i].iter().collect();
            if i < chars.len() && matches!(chars[i], 'L' | 'l' | 'f' | 'F' | 'd' | 'D') {
                i += 1;
            }
            let v = if text.contains('.') {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            } else {
                text.parse::<i64>().ok().map(Value::from)
            };
            match v {
                Some(v) => out.push(Tok::Num(v)),
                None => return Err(format!("invalid number [{text}]")),
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let three: String = chars[i..(i + 3).min(chars.len())].iter().collect();
        let op: &'static str = match three.as_str() {
            "===" => "==",
            "!==" => "!=",
            _ => match two.as_str() {
                "==" => "==",
                "!=" => "!=",
                "<=" => "<=",
                ">=" => ">=",
                "&&" => "&&",
                "||" => "||",
                "?." => "?.",
                "?[" => "?[",
                _ => match c {
                    '<' => "<",
                    '>' => ">",
                    '!' => "!",
                    '(' => "(",
                    ')' => ")",
                    '.' => ".",
                    '[' => "[",
                    ']' => "]",
                    ',' => ",",
                    ';' => ";",
                    '-' => "-",
                    other => return Err(format!("unsupported character [{other}]")),
                },
            },
        };
        i += if three == "===" || three == "!==" {
            3
        } else {
            op.len()
        };
        out.push(Tok::Op(op));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(format!("expected [{op}] at token {}", self.pos + 1))
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.eat("&&") {
            let r = self.unary()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.postfix()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                let r = self.postfix()?;
                return Ok(Expr::Cmp(op, Box::new(l), Box::new(r)));
            }
        }
        if matches!(self.peek(), Some(Tok::Ident(s)) if s == "instanceof") {
            self.pos += 1;
            return match self.toks.get(self.pos).cloned() {
                Some(Tok::Ident(t)) => {
                    self.pos += 1;
                    let ok = [
                        "String", "Number", "Integer", "Long", "Double", "Float", "Boolean", "Map",
                        "List", "Object",
                    ];
                    if !ok.contains(&t.as_str()) {
                        return Err(format!("unsupported type [{t}] for instanceof"));
                    }
                    Ok(Expr::InstanceOf(Box::new(l), t))
                }
                _ => Err("expected a type name after instanceof".into()),
            };
        }
        Ok(l)
    }
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat("?[") || self.eat("[") {
                let safe = matches!(self.toks.get(self.pos - 1), Some(Tok::Op("?[")));
                let idx = self.or()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx), safe);
                continue;
            }
            let safe = if self.eat("?.") {
                true
            } else if self.eat(".") {
                false
            } else {
                break;
            };
            let name = match self.toks.get(self.pos).cloned() {
                Some(Tok::Ident(n)) => n,
                _ => return Err("expected a field or method name after '.'".into()),
            };
            self.pos += 1;
            if self.eat("(") {
                if !METHODS.contains(&name.as_str()) {
                    return Err(format!("method [{name}] is not supported"));
                }
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                let want = match name.as_str() {
                    "isEmpty" | "length" | "size" | "toLowerCase" | "toUpperCase" | "trim" => 0,
                    _ => 1,
                };
                if args.len() != want {
                    return Err(format!("method [{name}] takes {want} argument(s)"));
                }
                e = Expr::Call(Box::new(e), name, args, safe);
            } else {
                e = Expr::Field(Box::new(e), name, safe);
            }
        }
        Ok(e)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let t = match self.toks.get(self.pos).cloned() {
            Some(t) => t,
            None => return Err("unexpected end of condition".into()),
        };
        self.pos += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Num(n) => Ok(Expr::Lit(n)),
            Tok::Op("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op("-") => match self.toks.get(self.pos).cloned() {
                Some(Tok::Num(n)) => {
                    self.pos += 1;
                    let neg = if let Some(i) = n.as_i64() {
                        Value::from(-i)
                    } else {
                        n.as_f64()
                            .and_then(|f| serde_json::Number::from_f64(-f))
                            .map(Value::Number)
                            .unwrap_or(Value::Null)
                    };
                    Ok(Expr::Lit(neg))
                }
                _ => Err("unary minus is only supported on number literals".into()),
            },
            Tok::Ident(id) => match id.as_str() {
                "ctx" => Ok(Expr::Ctx),
                "params" => Ok(Expr::Params),
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                other => Err(format!("unknown identifier [{other}]")),
            },
            Tok::Op(o) => Err(format!("unexpected [{o}]")),
        }
    }
}

/// Runtime failure of a condition (Painless would throw).
fn runtime(src: &str, kind: &str, reason: String) -> EsError {
    EsError::new(400, "script_exception", "runtime error")
        .with("script", src)
        .with("lang", "painless")
        .caused_by(EsError::new(400, kind, reason))
}

impl Condition {
    /// Compiles a condition: the `if` value, a string or `{"source": .., "params": ..}`.
    pub fn parse(v: &Value) -> Result<Condition, EsError> {
        let (src, params) = match v {
            Value::String(s) => (s.clone(), Map::new()),
            Value::Object(m) => {
                let src = match m.get("source") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(compile_err("", "a script object needs a string [source]")),
                };
                if let Some(Value::String(lang)) = m.get("lang") {
                    if lang != "painless" {
                        return Err(compile_err(
                            &src,
                            &format!("script lang [{lang}] is not supported"),
                        ));
                    }
                }
                if m.contains_key("id") {
                    return Err(compile_err(&src, "stored scripts are not supported"));
                }
                let params = match m.get("params") {
                    Some(Value::Object(p)) => p.clone(),
                    _ => Map::new(),
                };
                (src, params)
            }
            _ => return Err(compile_err("", "[if] must be a string or a script object")),
        };
        let mut body = src.trim();
        if let Some(b) = body.strip_prefix("return ") {
            body = b.trim();
        }
        let body = body.trim_end_matches(';').trim();
        if body.is_empty() {
            return Err(compile_err(&src, "empty condition"));
        }
        let toks = tokenize(body).map_err(|e| compile_err(&src, &e))?;
        let mut p = Parser { toks, pos: 0 };
        let expr = p.or().map_err(|e| compile_err(&src, &e))?;
        if p.pos != p.toks.len() {
            return Err(compile_err(
                &src,
                &format!("unexpected token at position {}", p.pos + 1),
            ));
        }
        Ok(Condition {
            source: src,
            expr,
            params,
        })
    }

    /// The condition text as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn eval(&self, ctx: &Ctx<'_>) -> Result<bool, EsError> {
        match self.eval_expr(&self.expr, ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(runtime(
                &self.source,
                "class_cast_exception",
                format!(
                    "condition must return a boolean, got [{}]",
                    java_type(&other)
                ),
            )),
        }
    }

    /// `base.name` on an already evaluated base.
    fn field<'v>(
        &self,
        b: Cow<'v, Value>,
        name: &str,
        safe: bool,
    ) -> Result<Cow<'v, Value>, EsError> {
        let src = &self.source;
        match b {
            Cow::Borrowed(Value::Object(m)) => {
                Ok(m.get(name).map_or(Cow::Owned(Value::Null), Cow::Borrowed))
            }
            Cow::Owned(Value::Object(mut m)) => {
                Ok(Cow::Owned(m.shift_remove(name).unwrap_or(Value::Null)))
            }
            b => match b.as_ref() {
                Value::Null if safe => Ok(Cow::Owned(Value::Null)),
                Value::Null => Err(runtime(
                    src,
                    "null_pointer_exception",
                    format!("cannot access field [{name}] of null (use ?. for null-safe access)"),
                )),
                Value::Array(a) if name == "length" => Ok(Cow::Owned(Value::from(a.len()))),
                other => Err(runtime(
                    src,
                    "illegal_argument_exception",
                    format!(
                        "cannot access field [{name}] of a value of type [{}]",
                        java_type(other)
                    ),
                )),
            },
        }
    }

    /// `base[idx]` on an already evaluated base.
    fn index<'v>(
        &self,
        b: Cow<'v, Value>,
        i: &Value,
        safe: bool,
    ) -> Result<Cow<'v, Value>, EsError> {
        let src = &self.source;
        if b.is_null() && safe {
            return Ok(Cow::Owned(Value::Null));
        }
        if let (Value::Object(_), Value::String(k)) = (b.as_ref(), i) {
            return self.field(b, k, safe);
        }
        match (b.as_ref(), i) {
            (Value::Array(a), Value::Number(n)) => match n.as_u64().map(|x| x as usize) {
                Some(x) if x < a.len() => Ok(match b {
                    Cow::Borrowed(Value::Array(a)) => Cow::Borrowed(&a[x]),
                    other => Cow::Owned(other.as_ref().get(x).cloned().unwrap_or(Value::Null)),
                }),
                _ => Err(runtime(
                    src,
                    "index_out_of_bounds_exception",
                    format!("Index {n} out of bounds for length {}", a.len()),
                )),
            },
            (Value::Null, _) => Err(runtime(
                src,
                "null_pointer_exception",
                "cannot index into null (use ?[ for null-safe access)".into(),
            )),
            (b, i) => Err(runtime(
                src,
                "illegal_argument_exception",
                format!(
                    "cannot index a value of type [{}] with [{}]",
                    java_type(b),
                    java_type(i)
                ),
            )),
        }
    }

    /// `ctx.name`: looks into the document without copying it.
    fn root_field<'v>(ctx: &'v Ctx<'_>, name: &str) -> Cow<'v, Value> {
        match name {
            "_index" => Cow::Owned(Value::String(ctx.doc.index.clone())),
            "_id" => Cow::Owned(ctx.doc.id.clone().map(Value::String).unwrap_or(Value::Null)),
            "_ingest" => Cow::Owned(Value::Object(ctx.ingest_object())),
            _ => ctx
                .doc
                .source
                .get(name)
                .map_or(Cow::Owned(Value::Null), Cow::Borrowed),
        }
    }

    fn eval_cow<'v>(&self, e: &Expr, ctx: &'v Ctx<'_>) -> Result<Cow<'v, Value>, EsError> {
        match e {
            Expr::Ctx => Ok(Cow::Owned(ctx_value(ctx))),
            Expr::Lit(v) => Ok(Cow::Owned(v.clone())),
            Expr::Field(base, name, safe) => {
                if matches!(**base, Expr::Ctx) {
                    return Ok(Self::root_field(ctx, name));
                }
                let b = self.eval_cow(base, ctx)?;
                self.field(b, name, *safe)
            }
            Expr::Index(base, idx, safe) => {
                let i = self.eval_cow(idx, ctx)?;
                if matches!(**base, Expr::Ctx) {
                    if let Value::String(k) = i.as_ref() {
                        return Ok(Self::root_field(ctx, k));
                    }
                }
                let b = self.eval_cow(base, ctx)?;
                self.index(b, &i, *safe)
            }
            other => Ok(Cow::Owned(self.eval_expr(other, ctx)?)),
        }
    }

    fn eval_expr(&self, e: &Expr, ctx: &Ctx<'_>) -> Result<Value, EsError> {
        let src = &self.source;
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Ctx => ctx_value(ctx),
            Expr::Params => Value::Object(self.params.clone()),
            Expr::Field(..) | Expr::Index(..) => self.eval_cow(e, ctx)?.into_owned(),
            Expr::Call(base, name, args, safe) => {
                let b = if matches!(**base, Expr::Ctx) && name == "containsKey" {
                    // ctx.containsKey('x') without copying the document.
                    let k = match args.first() {
                        Some(a) => self.eval_cow(a, ctx)?,
                        None => Cow::Owned(Value::Null),
                    };
                    return Ok(Value::Bool(match k.as_ref() {
                        Value::String(k) => {
                            matches!(k.as_str(), "_index" | "_id" | "_ingest")
                                || ctx.doc.source.contains_key(k.as_str())
                        }
                        _ => false,
                    }));
                } else {
                    self.eval_cow(base, ctx)?
                };
                if b.is_null() {
                    if *safe {
                        return Ok(Value::Null);
                    }
                    return Err(runtime(
                        src,
                        "null_pointer_exception",
                        format!(
                            "cannot invoke method [{name}] on null (use ?. for null-safe access)"
                        ),
                    ));
                }
                let a: Vec<Value> = args
                    .iter()
                    .map(|x| self.eval_expr(x, ctx))
                    .collect::<Result<_, _>>()?;
                self.call(&b, name, &a)?
            }
            Expr::Not(x) => match self.eval_expr(x, ctx)? {
                Value::Bool(b) => Value::Bool(!b),
                other => {
                    return Err(runtime(
                        src,
                        "class_cast_exception",
                        format!(
                            "cannot apply [!] to a value of type [{}]",
                            java_type(&other)
                        ),
                    ))
                }
            },
            Expr::And(l, r) => {
                if !self.truth(l, ctx)? {
                    Value::Bool(false)
                } else {
                    Value::Bool(self.truth(r, ctx)?)
                }
            }
            Expr::Or(l, r) => {
                if self.truth(l, ctx)? {
                    Value::Bool(true)
                } else {
                    Value::Bool(self.truth(r, ctx)?)
                }
            }
            Expr::Cmp(op, l, r) => {
                let a = self.eval_cow(l, ctx)?;
                let b = self.eval_cow(r, ctx)?;
                Value::Bool(self.compare(op, &a, &b)?)
            }
            Expr::InstanceOf(x, t) => {
                let v = self.eval_cow(x, ctx)?;
                let v = v.as_ref();
                Value::Bool(match t.as_str() {
                    "String" => v.is_string(),
                    "Number" => v.is_number(),
                    "Integer" | "Long" => v.is_i64() || v.is_u64(),
                    "Double" | "Float" => v.is_f64(),
                    "Boolean" => v.is_boolean(),
                    "Map" => v.is_object(),
                    "List" => v.is_array(),
                    _ => !v.is_null(),
                })
            }
        })
    }

    fn truth(&self, e: &Expr, ctx: &Ctx<'_>) -> Result<bool, EsError> {
        match self.eval_expr(e, ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(runtime(
                &self.source,
                "class_cast_exception",
                format!(
                    "cannot use a value of type [{}] as a boolean",
                    java_type(&other)
                ),
            )),
        }
    }

    fn compare(&self, op: &str, a: &Value, b: &Value) -> Result<bool, EsError> {
        if op == "==" || op == "!=" {
            let eq = match (a, b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                _ => a == b,
            };
            return Ok(if op == "==" { eq } else { !eq });
        }
        let (x, y) = match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if a.is_number() && b.is_number() => (x, y),
            _ => {
                let kind = if a.is_null() || b.is_null() {
                    "null_pointer_exception"
                } else {
                    "class_cast_exception"
                };
                return Err(runtime(
                    &self.source,
                    kind,
                    format!(
                        "cannot compare [{}] {op} [{}]: both sides must be numbers",
                        java_type(a),
                        java_type(b)
                    ),
                ));
            }
        };
        Ok(match op {
            "<" => x < y,
            "<=" => x <= y,
            ">" => x > y,
            _ => x >= y,
        })
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, EsError> {
        let src = &self.source;
        let bad = |what: &str| {
            runtime(
                src,
                "illegal_argument_exception",
                format!(
                    "dynamic method [{}, {name}/{}] not found{what}",
                    java_type(recv),
                    args.len()
                ),
            )
        };
        let arg_str = |i: usize| -> Result<&str, EsError> {
            match args.get(i) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(other) => Err(runtime(
                    src,
                    "class_cast_exception",
                    format!(
                        "argument of [{name}] must be a String, got [{}]",
                        java_type(other)
                    ),
                )),
                None => Err(bad("")),
            }
        };
        Ok(match (recv, name) {
            (Value::String(s), "contains") => Value::Bool(s.contains(arg_str(0)?)),
            (Value::String(s), "startsWith") => Value::Bool(s.starts_with(arg_str(0)?)),
            (Value::String(s), "endsWith") => Value::Bool(s.ends_with(arg_str(0)?)),
            (Value::String(s), "equalsIgnoreCase") => match args.first() {
                Some(Value::String(o)) => Value::Bool(s.to_lowercase() == o.to_lowercase()),
                _ => Value::Bool(false),
            },
            (v, "equals") => Value::Bool(args.first().is_some_and(|o| o == v)),
            (Value::String(s), "isEmpty") => Value::Bool(s.is_empty()),
            (Value::String(s), "length") => Value::from(s.encode_utf16().count()),
            (Value::String(s), "toLowerCase") => Value::String(s.to_lowercase()),
            (Value::String(s), "toUpperCase") => Value::String(s.to_uppercase()),
            (Value::String(s), "trim") => Value::String(s.trim().to_string()),
            (Value::Array(a), "contains") => {
                Value::Bool(args.first().is_some_and(|x| a.contains(x)))
            }
            (Value::Array(a), "isEmpty") => Value::Bool(a.is_empty()),
            (Value::Array(a), "size") => Value::from(a.len()),
            (Value::Array(a), "get") => match args.first().and_then(Value::as_u64) {
                Some(i) => a.get(i as usize).cloned().unwrap_or(Value::Null),
                None => return Err(bad(": get needs an index")),
            },
            (Value::Object(m), "containsKey") => Value::Bool(m.contains_key(arg_str(0)?)),
            (Value::Object(m), "isEmpty") => Value::Bool(m.is_empty()),
            (Value::Object(m), "size") => Value::from(m.len()),
            (Value::Object(m), "get") => m.get(arg_str(0)?).cloned().unwrap_or(Value::Null),
            _ => return Err(bad("")),
        })
    }
}

/// The `ctx` map Painless sees: the source plus `_index`, `_id` and `_ingest`.
fn ctx_value(ctx: &Ctx<'_>) -> Value {
    let mut m = ctx.doc.source.clone();
    m.insert("_index".into(), Value::String(ctx.doc.index.clone()));
    m.insert(
        "_id".into(),
        ctx.doc.id.clone().map(Value::String).unwrap_or(Value::Null),
    );
    m.insert("_ingest".into(), Value::Object(ctx.ingest_object()));
    Value::Object(m)
}
