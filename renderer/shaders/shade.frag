#version 330 core
// pyrender's mesh.frag (MIT licence) as it compiles for an untextured metallic-roughness
// material lit by directional lights without shadows, run once per pixel of each view on
// what the surface pass left there. Unchanged except that:
// - the normal is the face's own (pyrender interpolates three copies of it, which rounds
//   it in the last bit), and the direction to the camera is that of the ray through the
//   pixel's centre (pyrender's comes from the interpolated position, a point on that ray);
// - the camera position and the light's direction are those of the pixel's view;
// - a face seen from behind is lit as if seen from the front (two-sided lighting, see
//   render.py), the side decided as pyrender's vertex stage would at the face's provoking
//   (third) vertex.

struct PBRInfo {
    float nl;
    float nv;
    float nh;
    float lh;
    float vh;
    float roughness;
    float metallic;
    vec3 f0;
    vec3 c_diff;
};

uniform vec4 base_color_factor;
uniform float metallic_factor;
uniform float roughness_factor;
uniform vec3 emissive_factor;
uniform int n_directional_lights;
uniform vec3 light_color;
uniform float light_intensity;
uniform vec3 light_directions[NUM_VIEWS];
uniform vec3 cam_positions[NUM_VIEWS];
uniform vec3 ambient_light;

uniform int size;
// Per view, from (x, y, -1) at a pixel's centre, x and y in normalised device coordinates,
// to the direction of the ray through it, in the world.
uniform mat3 rays[NUM_VIEWS];
uniform sampler2DArray surfaces;
// Per face, two texels: its normal, and its third vertex.
uniform samplerBuffer faces;

flat in int view;

out vec4 frag_color;

const float PI = 3.141592653589793;
const float min_roughness = 0.04;

vec3 specular_reflection(PBRInfo info)
{
     vec3 res = info.f0 + (1.0 - info.f0) * pow(clamp(1.0 - info.vh, 0.0, 1.0), 5.0);
     return res;
}

float geometric_occlusion(PBRInfo info)
{
    float r = info.roughness + 1.0;
    float k = r * r  / 8.0;
    float g1 = info.nv / (info.nv * (1.0 - k) + k);
    float g2 = info.nl / (info.nl * (1.0 - k) + k);
    return g1 * g2;
}

float microfacet_distribution(PBRInfo info)
{
    float a = info.roughness * info.roughness;
    float a2 = a * a;
    float nh2 = info.nh * info.nh;

    float denom = (nh2 * (a2 - 1.0) + 1.0);
    return a2 / (PI * denom * denom);
}

vec3 compute_brdf(vec3 n, vec3 v, vec3 l,
                  float roughness, float metalness,
                  vec3 f0, vec3 c_diff, vec3 albedo,
                  vec3 radiance)
{
        vec3 h = normalize(l+v);
        float nl = clamp(dot(n, l), 0.001, 1.0);
        float nv = clamp(abs(dot(n, v)), 0.001, 1.0);
        float nh = clamp(dot(n, h), 0.0, 1.0);
        float lh = clamp(dot(l, h), 0.0, 1.0);
        float vh = clamp(dot(v, h), 0.0, 1.0);

        PBRInfo info = PBRInfo(nl, nv, nh, lh, vh, roughness, metalness, f0, c_diff);

        vec3 F = specular_reflection(info);
        float G = geometric_occlusion(info);
        float D = microfacet_distribution(info);

        vec3 diffuse_contrib = (1.0 - F) * c_diff / PI;
        vec3 spec_contrib = F * G * D / (4.0 * nl * nv + 0.001);

        vec3 color = nl * radiance * (diffuse_contrib + spec_contrib);
        return color;
}

void main()
{
    vec4 color = vec4(vec3(0.0), 1.0);

    float roughness = roughness_factor;
    float metallic = metallic_factor;
    roughness = clamp(roughness, min_roughness, 1.0);
    metallic = clamp(metallic, 0.0, 1.0);
    float alpha_roughness = roughness * roughness;

    vec4 base_color = base_color_factor;

    vec3 dialectric_spec = vec3(min_roughness);
    vec3 c_diff = mix(vec3(0.0), base_color.rgb * (1 - min_roughness), 1.0 - metallic);
    vec3 f0 = mix(dialectric_spec, base_color.rgb, metallic);

    float surface = texelFetch(surfaces, ivec3(gl_FragCoord.xy, view), 0).r;
    if (surface == 0.0) {
        discard;  // the background keeps its clear colour
    }
    int face = int(surface) - 1;
    // Row 0 is the image's top row (the upper-left origin of render.py).
    vec2 ndc = vec2(2.0 * gl_FragCoord.x / float(size) - 1.0, 1.0 - 2.0 * gl_FragCoord.y / float(size));
    vec3 ray = rays[view] * vec3(ndc, -1.0);
    vec3 frag_normal = normalize(texelFetch(faces, 2 * face).xyz);
    float facing = dot(frag_normal, cam_positions[view] - texelFetch(faces, 2 * face + 1).xyz);

    vec3 n = normalize(frag_normal);
    if (facing < 0.0) {
        n = -n;
    }

    for (int i = 0; i < n_directional_lights; i++) {
        vec3 direction = light_directions[view];
        vec3 v = normalize(-ray); // Vector towards camera
        vec3 l = normalize(-1.0 * direction);   // Vector towards light

        float attenuation = light_intensity;
        vec3 radiance = attenuation * light_color;

        vec3 res = compute_brdf(n, v, l, roughness, metallic,
                                f0, c_diff, base_color.rgb, radiance);
        color.xyz += res;
    }
    color.xyz += base_color.xyz * ambient_light;

    vec3 emissive = emissive_factor;
    color.xyz += emissive * emissive_factor;

    frag_color = clamp(vec4(pow(color.xyz, vec3(1.0/2.2)), color.a * base_color.a), 0.0, 1.0);
}
