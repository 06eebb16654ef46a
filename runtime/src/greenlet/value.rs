//! [`Value`]: the dynamically typed values that greenlets pass with `switch`.
//!
//! Python's greenlet passes any object through `switch`; `green` passes a boxed
//! [`Any`]. A `Value` remembers the name of the type it holds, so that a mismatch
//! is reported as "expected `i32`, found `&str`" rather than a bare failure.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::mem::{MaybeUninit, align_of, needs_drop, size_of};
use std::ptr;

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
    repr: Repr,
}

/// How a [`Value`] holds its payload.
enum Repr {
    /// The empty value `()`: passing nothing allocates and drops nothing.
    None,
    /// A payload of at most one word, with no drop glue (integers, floats, `bool`,
    /// `char`, small `Copy` structs): stored in place, so passing it allocates nothing.
    Inline {
        bits: MaybeUninit<usize>,
        ty: &'static InlineType,
    },
    /// Anything else, boxed.
    Boxed(Box<dyn Named>),
}

/// An inline value taken apart, to travel through a switch in a thread-local (see
/// `word`): its bits and its type (null for none).
#[derive(Clone, Copy)]
pub(crate) struct InlineParts {
    bits: MaybeUninit<usize>,
    ty: *const InlineType,
}

impl InlineParts {
    pub(crate) const EMPTY: InlineParts = InlineParts {
        bits: MaybeUninit::uninit(),
        ty: ptr::null(),
    };
}

/// The type of an inline payload: what `dyn Named` tells about a boxed one.
struct InlineType {
    id: fn() -> TypeId,
    name: fn() -> &'static str,
}

/// The [`InlineType`] of `T`, as a constant so that `&Self::TYPE` is a `'static`.
struct InlineOf<T>(std::marker::PhantomData<T>);

impl<T: Any> InlineOf<T> {
    const TYPE: InlineType = InlineType {
        id: TypeId::of::<T>,
        name: type_name::<T>,
    };
    /// Whether a `T` is stored inline: it fits a word and has nothing to drop.
    const FITS: bool = size_of::<T>() <= size_of::<usize>()
        && align_of::<T>() <= align_of::<usize>()
        && !needs_drop::<T>();
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
        Value { repr: Repr::None }
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
        let Some(v) = slot else {
            return Value::none();
        };
        if InlineOf::<T>::FITS {
            let mut bits = MaybeUninit::<usize>::uninit();
            // SAFETY: `FITS` checked that a `T` fits in a `usize` and needs no more
            // alignment; the bits are read back only as a `T` (see `inline_ref`).
            unsafe { ptr::write(bits.as_mut_ptr().cast::<T>(), v) };
            return Value {
                repr: Repr::Inline {
                    bits,
                    ty: &InlineOf::<T>::TYPE,
                },
            };
        }
        Value {
            repr: Repr::Boxed(Box::new(v)),
        }
    }

    /// Takes an inline value apart (anything else comes back unchanged).
    #[inline(always)]
    pub(crate) fn into_inline(self) -> Result<InlineParts, Value> {
        match self.repr {
            Repr::Inline { bits, ty } => Ok(InlineParts { bits, ty }),
            repr => Err(Value { repr }),
        }
    }

    /// Puts a value taken apart by [`into_inline`](Self::into_inline) back together;
    /// [`InlineParts::EMPTY`] gives the empty value.
    #[inline(always)]
    pub(crate) fn from_inline(parts: InlineParts) -> Value {
        // SAFETY: a non-null `ty` comes from `into_inline`, which got it from a
        // `&'static InlineType`.
        match unsafe { parts.ty.as_ref() } {
            Some(ty) => Value {
                repr: Repr::Inline {
                    bits: parts.bits,
                    ty,
                },
            },
            None => Value::none(),
        }
    }

    /// The inline payload as a `T`, if it is one.
    #[inline]
    fn inline_ref<T: Any>(&self) -> Option<&T> {
        match &self.repr {
            Repr::Inline { bits, ty } if (ty.id)() == TypeId::of::<T>() => {
                // SAFETY: `new` wrote a `T` into `bits` (the type id says it was a `T`),
                // and `T` needs no more alignment than the `usize` they are stored in.
                Some(unsafe { &*bits.as_ptr().cast::<T>() })
            }
            _ => None,
        }
    }

    /// Whether this is the empty value `()`.
    ///
    /// ```
    /// assert!(!green::Value::new(1).is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        matches!(self.repr, Repr::None)
    }

    /// Whether the value holds a `T`.
    ///
    /// ```
    /// assert!(green::Value::new("x").is::<&str>());
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        match &self.repr {
            Repr::Boxed(b) => (**b).as_any().is::<T>(),
            Repr::Inline { ty, .. } => (ty.id)() == TypeId::of::<T>(),
            Repr::None => TypeId::of::<T>() == TypeId::of::<()>(),
        }
    }

    /// The name of the type the value holds.
    ///
    /// ```
    /// assert_eq!(green::Value::new(1.5_f64).type_name(), "f64");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match &self.repr {
            Repr::Boxed(b) => (**b).name(),
            Repr::Inline { ty, .. } => (ty.name)(),
            Repr::None => "()",
        }
    }

    /// A copy of the value as a `T`, or a [`TypeMismatch`] naming both types.
    ///
    /// ```
    /// let v = green::Value::new(String::from("egon"));
    /// assert_eq!(v.get::<String>().unwrap(), "egon");
    /// ```
    pub fn get<T: Any + Clone>(&self) -> Result<T, TypeMismatch> {
        self.downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| TypeMismatch {
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
        match &self.repr {
            Repr::Boxed(b) => (**b).as_any().downcast_ref::<T>(),
            Repr::Inline { .. } => self.inline_ref::<T>(),
            Repr::None => (&() as &dyn Any).downcast_ref::<T>(),
        }
    }

    /// Unwraps the value as a `T` (moving it out), or gives it back with the error.
    ///
    /// ```
    /// let v = green::Value::new(vec![1, 2]);
    /// let v: Vec<i32> = v.downcast().unwrap();
    /// assert_eq!(v, [1, 2]);
    /// ```
    #[inline]
    pub fn downcast<T: Any>(self) -> Result<T, (Value, TypeMismatch)> {
        if let Some(v) = self.inline_ref::<T>() {
            // SAFETY: `v` is the inline `T`; reading it moves it out of `self`, which is
            // forgotten (inline payloads have no drop glue, so nothing is dropped twice).
            let v = unsafe { ptr::read(v) };
            std::mem::forget(self);
            return Ok(v);
        }
        self.downcast_slow()
    }

    /// [`downcast`](Self::downcast) of a value that is not an inline `T`.
    #[inline(never)]
    fn downcast_slow<T: Any>(self) -> Result<T, (Value, TypeMismatch)> {
        let found = self.type_name();
        let mismatch = TypeMismatch {
            expected: type_name::<T>(),
            found,
        };
        match self.repr {
            Repr::Boxed(b) if (*b).as_any().is::<T>() => match b.into_any().downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(_) => unreachable!("checked with is::<T>()"),
            },
            Repr::None => {
                let mut unit = Some(());
                match (&mut unit as &mut dyn Any).downcast_mut::<Option<T>>() {
                    Some(t) => t.take().ok_or((Value::none(), mismatch)),
                    None => Err((Value::none(), mismatch)),
                }
            }
            repr => Err((Value { repr }, mismatch)),
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
    fn small_values_are_stored_inline_and_round_trip() {
        #[derive(Debug, Clone, Copy, PartialEq)]
        struct Pair(u16, u16);
        struct Marker;
        assert!(matches!(Value::new(7u64).repr, Repr::Inline { .. }));
        assert!(matches!(Value::new(Pair(1, 2)).repr, Repr::Inline { .. }));
        assert!(matches!(Value::new(Marker).repr, Repr::Inline { .. }));
        // Too big, or with drop glue: boxed.
        assert!(matches!(Value::new([0u64; 2]).repr, Repr::Boxed(_)));
        assert!(matches!(Value::new(String::from("x")).repr, Repr::Boxed(_)));
        assert!(matches!(Value::new(()).repr, Repr::None));

        let v = Value::new(-3i32);
        assert_eq!(v.get::<i32>(), Ok(-3));
        assert!(v.is::<i32>() && !v.is::<u32>());
        assert_eq!(v.type_name(), "i32");
        assert_eq!(v.to_string(), "-3");
        assert_eq!(v.get::<u32>().unwrap_err().found(), "i32");
        let (v, e) = v.downcast::<u32>().unwrap_err();
        assert_eq!(e.expected(), "u32");
        assert_eq!(v.downcast::<i32>().ok(), Some(-3));
        assert_eq!(
            Value::new(Pair(1, 2)).downcast::<Pair>().ok(),
            Some(Pair(1, 2))
        );
        assert_eq!(Value::new('é').to_string(), "é");
        assert_eq!(Value::new(true).get::<bool>(), Ok(true));
        assert_eq!(Value::new(2.5f64).downcast_ref::<f64>(), Some(&2.5));
        assert!(Value::new(Marker).downcast::<Marker>().is_ok());
    }

    #[test]
    fn downcast_gives_the_value_back_on_mismatch() {
        let (v, e) = Value::new(5i32).downcast::<String>().unwrap_err();
        assert_eq!(v.get::<i32>(), Ok(5));
        assert_eq!(e.expected(), "alloc::string::String");
    }
}
