//! Derive macros for [shmkit](https://docs.rs/shmkit), re-exported by it: use them as
//! `shmkit::ShmSafe`, `shmkit::Pod` and `shmkit::Zeroable`, not from this crate.
//!
//! - `#[derive(ShmSafe)]` checks that the type is a `#[repr(C)]` (or
//!   `#[repr(transparent)]`) struct whose every field is `ShmSafe` and that has no
//!   `Drop`, and gives it a stable identity: the bare type name (or the one set with
//!   `#[type_name("…")]`) and a layout digest made of every field's offset and layout.
//!   `#[shmkit(layout = N)]` sets the type's layout version (`ShmSafe::LAYOUT`).
//! - `#[derive(Pod)]` and `#[derive(Zeroable)]` implement bytemuck's traits through
//!   shmkit's re-export, so a crate that depends on shmkit alone can use them, and a
//!   type with padding gets an error that says how to remove it.
//!
//! Each accepts `#[shmkit(crate = "path")]` for a crate that renamed its shmkit
//! dependency.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Fields, GenericParam, Ident, LitInt, LitStr, Member, Path, parse_macro_input,
};

/// Derives `shmkit::ShmSafe`; see the crate docs.
#[proc_macro_derive(ShmSafe, attributes(type_name, shmkit))]
pub fn derive_shm_safe(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    shm_safe(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `bytemuck::Pod` through shmkit's re-export; see the crate docs.
#[proc_macro_derive(Pod, attributes(shmkit))]
pub fn derive_pod(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    pod(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `bytemuck::Zeroable` through shmkit's re-export; see the crate docs.
#[proc_macro_derive(Zeroable, attributes(shmkit))]
pub fn derive_zeroable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    zeroable(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What `#[shmkit(..)]` and `#[type_name(..)]` say.
struct Options {
    krate: Path,
    type_name: Option<LitStr>,
    layout: Option<LitInt>,
}

fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut krate: Path = syn::parse_quote!(::shmkit);
    let mut type_name = None;
    let mut layout = None;
    for attr in &input.attrs {
        if attr.path().is_ident("type_name") {
            let name: LitStr = attr.parse_args()?;
            if name.value().is_empty() {
                return Err(syn::Error::new(
                    name.span(),
                    "the type name must not be empty",
                ));
            }
            type_name = Some(name);
        } else if attr.path().is_ident("shmkit") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    let path: LitStr = meta.value()?.parse()?;
                    krate = path.parse()?;
                    Ok(())
                } else if meta.path.is_ident("layout") {
                    layout = Some(meta.value()?.parse()?);
                    Ok(())
                } else {
                    Err(meta.error("expected `crate = \"path\"` or `layout = N`"))
                }
            })?;
        }
    }
    Ok(Options {
        krate,
        type_name,
        layout,
    })
}

/// The struct's fields, or an error for enums and unions.
fn struct_fields<'a>(input: &'a DeriveInput, what: &str) -> syn::Result<&'a Fields> {
    match &input.data {
        Data::Struct(s) => Ok(&s.fields),
        Data::Enum(e) => Err(syn::Error::new(
            e.enum_token.span(),
            format!(
                "#[derive({what})] works on structs only: an enum read from shared memory \
                 can hold an invalid discriminant (undefined behaviour); store an integer \
                 and decode it"
            ),
        )),
        Data::Union(u) => Err(syn::Error::new(
            u.union_token.span(),
            format!("#[derive({what})] works on structs only"),
        )),
    }
}

/// The `repr` words of the type (`C`, `transparent`, `packed`, `align`, ...).
fn reprs(input: &DeriveInput) -> syn::Result<Vec<Ident>> {
    let mut out = Vec::new();
    for attr in &input.attrs {
        if attr.path().is_ident("repr") {
            attr.parse_nested_meta(|meta| {
                if let Some(id) = meta.path.get_ident() {
                    out.push(id.clone());
                }
                // Skip `align(N)` / `packed(N)` arguments.
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let _: TokenStream2 = content.parse()?;
                }
                Ok(())
            })?;
        }
    }
    Ok(out)
}

fn require_repr_c(input: &DeriveInput, what: &str) -> syn::Result<()> {
    let reprs = reprs(input)?;
    if reprs.iter().any(|r| r == "C" || r == "transparent") {
        return Ok(());
    }
    Err(syn::Error::new(
        input.ident.span(),
        format!(
            "#[derive({what})] needs a fixed layout: add #[repr(C)] (or #[repr(transparent)]) \
             to `{}`; Rust's default layout may differ between two builds",
            input.ident
        ),
    ))
}

/// `offset_of!` member for each field.
fn members(fields: &Fields) -> Vec<Member> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ident {
            Some(id) => Member::Named(id.clone()),
            None => Member::Unnamed(syn::Index {
                index: i as u32,
                span: f.span(),
            }),
        })
        .collect()
}

fn shm_safe(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let opts = options(input)?;
    let fields = struct_fields(input, "ShmSafe")?;
    require_repr_c(input, "ShmSafe")?;
    let krate = &opts.krate;
    let ident = &input.ident;

    let mut generics = input.generics.clone();
    let mut name_args = Vec::new();
    for param in &input.generics.params {
        match param {
            GenericParam::Lifetime(l) => {
                return Err(syn::Error::new(
                    l.span(),
                    "#[derive(ShmSafe)]: a type with a lifetime holds references, which mean \
                     nothing in another process",
                ));
            }
            GenericParam::Type(t) => {
                let id = &t.ident;
                name_args.push(quote!(name.push_type::<#id>();));
            }
            GenericParam::Const(c) => {
                let id = &c.ident;
                name_args.push(quote!(name.push_u64(#id as u64);));
            }
        }
    }
    for param in &mut generics.params {
        if let GenericParam::Type(t) = param {
            t.bounds.push(syn::parse_quote!(#krate::ShmSafe));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let base_name = match &opts.type_name {
        Some(name) => name.clone(),
        None => LitStr::new(&ident.to_string(), ident.span()),
    };
    let name_args = if name_args.is_empty() {
        quote!()
    } else {
        let mut parts = Vec::new();
        for (i, arg) in name_args.iter().enumerate() {
            let sep = if i == 0 { "<" } else { ", " };
            parts.push(quote!(name.push_str(#sep); #arg));
        }
        quote!(#(#parts)* name.push_str(">");)
    };
    let layout_const = opts
        .layout
        .as_ref()
        .map(|n| quote!(const LAYOUT: u32 = #n;));

    let field_layouts = fields.iter().zip(members(fields)).map(|(f, m)| {
        let ty = &f.ty;
        quote_spanned! {ty.span()=>
            layout.field::<#ty>(::core::mem::offset_of!(Self, #m));
        }
    });
    let drop_msg = format!(
        "#[derive(ShmSafe)]: `{ident}` must not implement Drop: a segment is unmapped, never \
         dropped in place, because other processes may still use the value"
    );

    Ok(quote! {
        // SAFETY: the derive checked what the compiler can: a struct, `repr(C)` or
        // `repr(transparent)`, every field `ShmSafe` (no pointers, references, bool, char,
        // enums, usize), no Drop, no lifetimes.
        unsafe impl #impl_generics #krate::ShmSafe for #ident #ty_generics #where_clause {
            #layout_const

            fn type_name(name: &mut #krate::segment::TypeName) {
                name.push_str(#base_name);
                #name_args
            }

            fn layout(layout: &mut #krate::segment::LayoutHasher) {
                const { ::core::assert!(!::core::mem::needs_drop::<Self>(), #drop_msg) };
                layout.shape::<Self>();
                #(#field_layouts)*
            }
        }
    })
}

fn no_generics(input: &DeriveInput, what: &str) -> syn::Result<()> {
    if input.generics.params.is_empty() {
        return Ok(());
    }
    Err(syn::Error::new(
        input.generics.span(),
        format!(
            "#[derive(shmkit::{what})] does not take generic structs (padding cannot be checked \
             for every instantiation); implement the trait by hand with `unsafe impl`"
        ),
    ))
}

fn pod(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let opts = options(input)?;
    let fields = struct_fields(input, "Pod")?;
    require_repr_c(input, "Pod")?;
    no_generics(input, "Pod")?;
    let krate = &opts.krate;
    let ident = &input.ident;
    let checks = fields.iter().map(|f| {
        let ty = &f.ty;
        quote_spanned!(ty.span()=> is_pod::<#ty>();)
    });
    let sizes = fields.iter().map(|f| {
        let ty = &f.ty;
        quote!(+ ::core::mem::size_of::<#ty>())
    });
    let padding_msg = format!(
        "#[derive(Pod)]: `{ident}` has padding (the compiler inserted bytes between or after \
         its fields to align them), and Pod forbids padding because its bytes are \
         uninitialised. Fix: order the fields from the largest alignment to the smallest, \
         and/or add explicit padding fields where the gaps are (e.g. `_pad: [u8; 4]` after a \
         u32 that precedes a u64), so that the struct's size is the sum of its fields' sizes"
    );
    Ok(quote! {
        const _: () = {
            fn is_pod<T: #krate::Pod>() {}
            #[allow(dead_code)]
            fn every_field_is_pod() {
                #(#checks)*
            }
            ::core::assert!(
                ::core::mem::size_of::<#ident>() == 0 #(#sizes)*,
                #padding_msg
            );
        };
        // SAFETY: a `repr(C)`/`repr(transparent)` struct without generics, every field
        // `Pod`, and no padding (asserted above): every bit pattern is a valid value.
        unsafe impl #krate::Pod for #ident {}
    })
}

fn zeroable(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let opts = options(input)?;
    let fields = struct_fields(input, "Zeroable")?;
    let krate = &opts.krate;
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    for param in &mut generics.params {
        if let GenericParam::Type(t) = param {
            t.bounds.push(syn::parse_quote!(#krate::Zeroable));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let checks = fields.iter().map(|f| {
        let ty = &f.ty;
        quote_spanned!(ty.span()=> is_zeroable::<#ty>();)
    });
    Ok(quote! {
        const _: () = {
            fn is_zeroable<T: #krate::Zeroable>() {}
            #[allow(dead_code)]
            fn every_field_is_zeroable #impl_generics () #where_clause {
                #(#checks)*
            }
        };
        // SAFETY: every field is `Zeroable` (checked above), so all-zero bytes are a
        // valid value of the struct.
        unsafe impl #impl_generics #krate::Zeroable for #ident #ty_generics #where_clause {}
    })
}
