//! [`Value`]: the dynamically typed values that greenlets pass with `switch`.
//!
//! Python's greenlet passes any object through `switch`; `green` passes a boxed
//! [`Any`]. A `Value` remembers the name of the type it holds, so that a mismatch
//! is reported as "expected `i32`, found `&str`" rather than a bare failure.

use std::any::{type_name, Any, TypeId};
use std::fmt;

/// `Any` that also knows its type's name (for error messages).
trait Named: Any {
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> Named for T {
    fn name(&self) -> &'static str {
        type_name::<T>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A dynamically typed value passed between greenlets by
/// [`Greenlet::switch`](crate::Greenlet::switch), or returned by a greenlet's function.
///
/// `()` is the empty value ([`Value::none`]), Python's `None`. Common types
/// (`&str`, `String`, integers, floats, `bool`, `char`) print themselves with
/// `Display`, so a `Value` can be printed directly.
///
/// # Examples
///
/// ```
/// use green::Value;
///
/// let v = Value::new(42_i32);
/// assert_eq!(v.get::<i32>().unwrap(), 42);
/// assert_eq!(v.to_string(), "42");
/// let err = v.get::<&str>().unwrap_err();
/// assert_eq!(err.to_string(), "expected a value of type `&str`, found `i32`");
/// assert!(Value::none().is_none());
/// ```
pub struct Value {
    /// `None` is the empty value `()`: passing nothing allocates and drops nothing.
    inner: Option<Box<dyn Named>>,
}

/// The error of [`Value::get`] and [`Value::downcast`] when the value holds another type.
///
/// # Examples
///
/// ```
/// let err = green::Value::new("egon").get::<u8>().unwrap_err();
/// assert_eq!(err.found(), "&str");
/// assert_eq!(err.expected(), "u8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    expected: &'static str,
    found: &'static str,
}

impl TypeMismatch {
    /// The type that was asked for.
    ///
    /// ```
    /// assert_eq!(green::Value::none().get::<i64>().unwrap_err().expected(), "i64");
    /// ```
    pub fn expected(&self) -> &'static str {
        self.expected
    }

    /// The type the value really holds.
    ///
    /// ```
    /// assert_eq!(green::Value::none().get::<i64>().unwrap_err().found(), "()");
    /// ```
    pub fn found(&self) -> &'static str {
        self.found
    }
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected a value of type `{}`, found `{}`",
            self.expected, self.found
        )
    }
}

impl std::error::Error for TypeMismatch {}

impl Value {
    /// The empty value, `()`: what `switch()` passes when there is nothing to pass.
    ///
    /// ```
    /// assert!(green::Value::none().is_none());
    /// ```
    #[inline]
    pub fn none() -> Value {
        Value { inner: None }
    }

    /// Wraps `v`. Wrapping a `Value` returns it unchanged (no double boxing).
    ///
    /// ```
    /// use green::Value;
    /// let v = Value::new(Value::new(7_u8));
    /// assert_eq!(v.get::<u8>(), Ok(7));
    /// ```
    #[inline]
    pub fn new<T: Any>(v: T) -> Value {
        if TypeId::of::<T>() == TypeId::of::<()>() {
            return Value::none();
        }
        let mut slot = Some(v);
        if let Some(v) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Value>>() {
            return v.take().unwrap_or_default();
        }
        Value {
            inner: slot.map(|v| Box::new(v) as Box<dyn Named>),
        }
    }

    /// Whether this is the empty value `()`.
    ///
    /// ```
    /// assert!(!green::Value::new(1).is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.inner.is_none()
    }

    /// Whether the value holds a `T`.
    ///
    /// ```
    /// assert!(green::Value::new("x").is::<&str>());
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        match &self.inner {
            Some(b) => (**b).as_any().is::<T>(),
            None => TypeId::of::<T>() == TypeId::of::<()>(),
        }
    }

    /// The name of the type the value holds.
    ///
    /// ```
    /// assert_eq!(green::Value::new(1.5_f64).type_name(), "f64");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match &self.inner {
            Some(b) => (**b).name(),
            None => "()",
        }
    }

    /// A copy of the value as a `T`, or a [`TypeMismatch`] naming both types.
    ///
    /// ```
    /// let v = green::Value::new(String::from("egon"));
    /// assert_eq!(v.get::<String>().unwrap(), "egon");
    /// ```
    pub fn get<T: Any + Clone>(&self) -> Result<T, TypeMismatch> {
        self.downcast_ref::<T>().cloned().ok_or(TypeMismatch {
            expected: type_name::<T>(),
            found: self.type_name(),
        })
    }

    /// A reference to the value as a `T`, if it is one.
    ///
    /// ```
    /// let v = green::Value::new(vec![1, 2]);
    /// assert_eq!(v.downcast_ref::<Vec<i32>>().unwrap().len(), 2);
    /// ```
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match &self.inner {
            Some(b) => (**b).as_any().downcast_ref::<T>(),
            None => (&() as &dyn Any).downcast_ref::<T>(),
        }
    }

    /// Unwraps the value as a `T` (moving it out), or gives it back with the error.
    ///
    /// ```
    /// let v = green::Value::new(vec![1, 2]);
    /// let v: Vec<i32> = v.downcast().unwrap();
    /// assert_eq!(v, [1, 2]);
    /// ```
    pub fn downcast<T: Any>(self) -> Result<T, (Value, TypeMismatch)> {
        let found = self.type_name();
        let mismatch = TypeMismatch {
            expected: type_name::<T>(),
            found,
        };
        match self.inner {
            Some(b) if (*b).as_any().is::<T>() => match b.into_any().downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(_) => unreachable!("checked with is::<T>()"),
            },
            None => {
                let mut unit = Some(());
                match (&mut unit as &mut dyn Any).downcast_mut::<Option<T>>() {
                    Some(t) => t.take().ok_or((Value::none(), mismatch)),
                    None => Err((Value::none(), mismatch)),
                }
            }
            inner => Err((Value { inner }, mismatch)),
        }
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::none()
    }
}

macro_rules! display_as {
    ($self:ident, $f:ident, $($t:ty),*) => {
        $(if let Some(v) = $self.downcast_ref::<$t>() {
            return fmt::Display::fmt(v, $f);
        })*
    };
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_as!(
            self, f, &str, String, i32, i64, u32, u64, usize, isize, i8, i16, u8, u16, f32, f64,
            bool, char
        );
        if self.is_none() {
            return f.write_str("None");
        }
        write!(f, "<{}>", self.type_name())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({}: {})", self, self.type_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_of_common_types_and_opaque_ones() {
        assert_eq!(Value::new("egon").to_string(), "egon");
        assert_eq!(Value::new(3u64).to_string(), "3");
        assert_eq!(Value::none().to_string(), "None");
        assert_eq!(Value::new(vec![1u8]).to_string(), "<alloc::vec::Vec<u8>>");
    }

    #[test]
    fn downcast_gives_the_value_back_on_mismatch() {
        let (v, e) = Value::new(5i32).downcast::<String>().unwrap_err();
        assert_eq!(v.get::<i32>(), Ok(5));
        assert_eq!(e.expected(), "alloc::string::String");
    }
}
